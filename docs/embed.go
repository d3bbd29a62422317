// Package docs holds the project's documentation. Its only Go is this
// file: the HTTP API description, embedded so every node serves the very
// document the docs show (GET /api/v1/openapi.yaml).
package docs

import _ "embed"

// OpenAPI is docs/openapi.yaml.
//
//go:embed openapi.yaml
var OpenAPI []byte
