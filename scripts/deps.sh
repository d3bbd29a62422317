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
command -v chromium >/dev/null || need_apt+=(chromium)      # headless browser for the web UI tests (appliance/e2e/ui_browser_test.go)
command -v node >/dev/null || need_apt+=(nodejs)            # runs playwright-core, which drives chromium
command -v npm >/dev/null || need_apt+=(npm)                # fetches htmx and playwright-core (below)
command -v svmap >/dev/null || need_apt+=(sipvicious)       # svmap, svwar, svcrack: the attack suite's scanners (appliance/e2e/attack_scan_test.go)
command -v testssl >/dev/null || need_apt+=(testssl.sh)     # TLS scanner: the attack suite's TLS checks (appliance/e2e/attack_tls_test.go)
command -v tmux >/dev/null || need_apt+=(tmux)              # a terminal for TestSetupUnderTmux (the console setup)
command -v nft >/dev/null || [ -x /usr/sbin/nft ] || need_apt+=(nftables)   # nft -c and the namespace test of the package's firewall (image/deb/deb_test.go)
command -v shellcheck >/dev/null || need_apt+=(shellcheck)                   # the package's scripts (image/deb/deb_test.go)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "deps: installing ${need_apt[*]}"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi

# Kamailio with its TLS module: the SBC reached over mutual TLS in TestTrunkTLS.
scripts/kamailio-deps.sh kamailio-tls-modules

# htmx for the web UI, from the npm registry, checked against a pinned
# SHA-256 and copied beside the UI's static files. The copy is git-ignored
# and embedded by the next build; without it the UI works with full page
# loads (docs/ui.md). The Go test TestVendoredHTMX checks the same sum.
htmx_version=2.0.11
htmx_sha256=d6fdc75f204e6bdefa99b69bf1e6d4ac69b8a364f77929f45c13476b4000f717
htmx_dst=appliance/web/ui/static/vendor/htmx.min.js
if ! echo "$htmx_sha256  $htmx_dst" | sha256sum --check --status 2>/dev/null; then
  cache="${XDG_CACHE_HOME:-$HOME/.cache}/outpost/npm"
  mkdir -p "$cache"
  tgz="$cache/htmx.org-$htmx_version.tgz"
  [ -s "$tgz" ] || (cd "$cache" && npm pack --silent "htmx.org@$htmx_version" >/dev/null)
  tmp="$(mktemp -d)"
  tar -xzf "$tgz" -C "$tmp" package/dist/htmx.min.js
  if ! echo "$htmx_sha256  $tmp/package/dist/htmx.min.js" | sha256sum --check --status; then
    rm -rf "$tmp" "$tgz"
    echo "deps: htmx.org@$htmx_version's dist/htmx.min.js does not match the SHA-256 pinned in scripts/deps.sh; refusing it" >&2
    exit 1
  fi
  install -m 0644 "$tmp/package/dist/htmx.min.js" "$htmx_dst"
  rm -rf "$tmp"
  echo "deps: htmx $htmx_version vendored in $htmx_dst (sha256 ok)"
fi

# playwright-core for the browser tests, exactly as package-lock.json pins
# it (npm checks each package's integrity); node_modules is git-ignored.
# It never downloads a browser: the tests drive Debian's chromium.
browser_dir=appliance/e2e/testdata/browser
lock_sum="$(sha256sum "$browser_dir/package-lock.json" | cut -d' ' -f1)"
stamp="$browser_dir/node_modules/.outpost-lock-sha256"
if [ "$(cat "$stamp" 2>/dev/null)" != "$lock_sum" ]; then
  (cd "$browser_dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
  echo "$lock_sum" >"$stamp"
fi

command -v go >/dev/null || { echo "deps: Go is required (https://go.dev/dl/); see README" >&2; exit 1; }
go mod download
echo "deps: ok"
