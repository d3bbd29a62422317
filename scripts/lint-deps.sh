#!/usr/bin/env bash
# Installs the linters `make lint` runs, pinned.
set -euo pipefail
bin="$(go env GOPATH)/bin"
if ! "$bin/staticcheck" -version 2>/dev/null | grep -q "(0.8.2)"; then
  go install honnef.co/go/tools/cmd/staticcheck@v0.8.2
fi
