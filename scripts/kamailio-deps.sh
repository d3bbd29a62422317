#!/usr/bin/env bash
# Installs Debian's Kamailio (5.6 on Debian 12) with the module packages
# named as arguments, e.g.
#   scripts/kamailio-deps.sh kamailio-tls-modules      (make deps: the TLS SBC of TestTrunkTLS)
#   scripts/kamailio-deps.sh kamailio-sqlite-modules   (make bench: the reference registrar and proxy)
# The tests and benchmarks start their own kamailio on loopback addresses
# with generated configs; the package's system service must not run: it
# would listen on every address on port 5060. So the install runs with a
# policy-rc.d that forbids starting services, and where systemd runs the
# unit is disabled and stopped.
# Idempotent: a second run changes nothing and takes well under a second.
set -euo pipefail

pkgs=(kamailio "$@")
need=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || need+=("$p")
done
version() { /usr/sbin/kamailio -v 2>/dev/null | head -1 | cut -d' ' -f2-3; }
if [ ${#need[@]} -eq 0 ]; then
  echo "kamailio-deps: ok ($(version))"
  exit 0
fi

sudo_cmd=""
[ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"

policy=/usr/sbin/policy-rc.d
own_policy=false
if [ ! -e "$policy" ]; then
  own_policy=true
  # 101: action forbidden by policy; invoke-rc.d then starts nothing.
  printf '#!/bin/sh\nexit 101\n' | $sudo_cmd tee "$policy" >/dev/null
  $sudo_cmd chmod 755 "$policy"
  trap '$sudo_cmd rm -f "$policy"' EXIT
fi

echo "kamailio-deps: installing ${need[*]}"
$sudo_cmd apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${need[@]}"

# The unit is enabled by the package; disable it (systemctl works offline
# too) and stop it where systemd runs.
if command -v systemctl >/dev/null; then
  $sudo_cmd systemctl disable kamailio.service >/dev/null 2>&1 || true
  [ -d /run/systemd/system ] && { $sudo_cmd systemctl stop kamailio.service >/dev/null 2>&1 || true; }
fi
$own_policy && { $sudo_cmd rm -f "$policy"; trap - EXIT; }

echo "kamailio-deps: ok ($(version))"
