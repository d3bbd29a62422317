// Package config owns the node configuration: the Config type, its embedded
// defaults, the YAML file format (strict: unknown keys are errors), the
// OUTPOST_<SECTION>_<KEY> environment overrides, validation, and the commented
// example file (outpost.example.yaml, exported as Example). The reference for
// operators is docs/configuration.md; shared/CONTRACT.md fixes the key names.
//
// Every key is optional: Default() is a working single-node configuration and
// Load("", os.Environ()) runs with no file at all. The list of keys is derived
// from the struct tags by reflection, so the YAML decoder, the environment
// overrides, the example and the documentation tests cannot drift apart.
//
// The package must never start anything, open sockets, create directories or
// write files, and must never import another package of this module. Its only
// I/O is reading the configuration file it is given and checking that files the
// configuration names (TLS certificate and key, admin token, bootstrap
// snapshot) exist and are readable. It never reads secret contents into Config:
// Config holds file paths, and the consumers read the secrets themselves.
package config
