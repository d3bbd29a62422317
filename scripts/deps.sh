#!/usr/bin/env bash
# Installs what the build and the tests need on a fresh Debian 12 machine.
# Idempotent: a second run changes nothing and takes a few seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v gcc >/dev/null || need_apt+=(gcc libc6-dev)   # cgo, for mattn/go-sqlite3
command -v curl >/dev/null || need_apt+=(curl)
command -v sipp >/dev/null || need_apt+=(sip-tester)        # SIPp, for the SIP end-to-end tests
command -v baresip >/dev/null || need_apt+=(baresip-core)   # baresip, a headless softphone for the media end-to-end test
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "deps: installing ${need_apt[*]}"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi

# Kamailio with its TLS module: the SBC reached over mutual TLS in TestTrunkTLS.
scripts/kamailio-deps.sh kamailio-tls-modules

command -v go >/dev/null || { echo "deps: Go is required (https://go.dev/dl/); see README" >&2; exit 1; }
go mod download
echo "deps: ok"
