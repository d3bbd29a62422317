package config

import _ "embed"

// Example is outpost.example.yaml: every key with its default and a comment.
// Loading it gives Default() (node_id and data_dir are commented out because
// their defaults depend on the host). Tests keep it complete.
//
//go:embed outpost.example.yaml
var Example []byte
