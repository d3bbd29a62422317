#!/usr/bin/env bash
# `make run`: the reference control plane (outpost-cloud) with the demo
# account (shared/contract/demo-snapshot.json), and one Outpost node paired
# with it, on loopback ports. Ctrl-C stops both cleanly. State lives in
# ./run-data; `make clean` removes it.
set -euo pipefail
cd "$(dirname "$0")/.."

snapshot=../shared/contract/demo-snapshot.json
[ -f "$snapshot" ] || { echo "run: $snapshot not found: clone the project with shared/ beside it" >&2; exit 1; }

data=run-data
mkdir -p "$data"
http=${OUTPOST_DEMO_HTTP:-127.0.0.1:8080}
cloud=${OUTPOST_DEMO_CLOUD:-127.0.0.1:9090}
# Not the node's: it refuses OUTPOST_ variables it does not know.
unset OUTPOST_DEMO_HTTP OUTPOST_DEMO_CLOUD

# The control plane, seeded with the demo account on its first start.
[ -s "$data/cloud-admin-token" ] || { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$data/cloud-admin-token"; chmod 600 "$data/cloud-admin-token"; }
bin/outpost-cloud serve --listen "$cloud" --db "$data/cloud.db" --admin-token-file "$data/cloud-admin-token" \
  --seed "$snapshot" 2>"$data/cloud.log" &
cloud_pid=$!
for _ in $(seq 1 100); do
  curl -fsS "http://$cloud/livez" >/dev/null 2>&1 && break
  kill -0 $cloud_pid 2>/dev/null || { echo "run: outpost-cloud exited; see $data/cloud.log" >&2; exit 1; }
  sleep 0.1
done

export OUTPOST_NODE_ID=demo-1
export OUTPOST_SITE=hq
export OUTPOST_DATA_DIR="$data"
export OUTPOST_HTTP_LISTEN="$http"
export OUTPOST_RAFT_LISTEN=127.0.0.1:7000
export OUTPOST_SIP_UDP=127.0.0.1:5060
export OUTPOST_SIP_TCP=127.0.0.1:5060
export OUTPOST_SIP_TLS=
export OUTPOST_BOOTSTRAP_SNAPSHOT="$snapshot"
export OUTPOST_CLOUD_URL="http://$cloud"

# Pair once: a one-use code from the cloud's admin API, exchanged by
# `outpost pair` for the node's credentials ($data/cloud.json, 0600).
if [ ! -s "$data/cloud.json" ]; then
  code=$(curl -fsS -X POST -H "Authorization: Bearer $(cat "$data/cloud-admin-token")" \
    -d '{"appliance":"demo"}' "http://$cloud/v1/admin/pairing-codes" | sed -E 's/.*"code":"([^"]+)".*/\1/')
  bin/outpost pair --cloud "http://$cloud" --code "$code" >/dev/null
fi

bin/outpost serve &
pid=$!
trap 'kill -TERM $pid $cloud_pid 2>/dev/null; wait $pid $cloud_pid' INT TERM

for _ in $(seq 1 100); do
  if curl -fsS "http://$http/readyz" >/dev/null 2>&1 && \
     [ "$(bin/outpost status --server "$http" --json 2>/dev/null | grep -c '"revision": [1-9]')" -gt 0 ]; then
    break
  fi
  kill -0 $pid 2>/dev/null || { echo "run: outpost exited; see its log above" >&2; exit 1; }
  sleep 0.2
done

cat <<MSG

  Outpost demo is running: node demo-1 (site hq), paired with the
  reference control plane outpost-cloud, which holds the demo account.

  Web UI:        http://$http/   sign in as admin / outpost-admin
  Status (JSON): http://$http/api/v1/status   or   bin/outpost status --server $http
  Admin token:   $data/admin-token  (for bin/outpost apply --server $http SNAPSHOT.json)

  Control plane: http://$cloud  (admin API, bearer token in $data/cloud-admin-token):
    curl -H "Authorization: Bearer \$(cat $data/cloud-admin-token)" http://$cloud/v1/admin/snapshot
  An edit there (PUT /v1/admin/users/u-alice ...) reaches the node within a
  second; stop outpost-cloud and the node turns to survivability after 30 s.

  Phones register to 127.0.0.1:5060 (UDP or TCP), realm acme.example, with
  these demo accounts, and call each other by extension or number:
    alice / pw-alice   ext 1001   +16505550101
    bob   / pw-bob     ext 1002   +16505550102
    carol / pw-carol   ext 1003
    dave  / pw-dave    ext 2001   +13125550201   (site branch)
    erin  / pw-erin    ext 2002                  (site branch)
  Groups: 1900 Front Desk (alice and bob at once), 1901 Operator (carol),
  1999 Main Menu (an IVR: 1 front desk, 2 branch sales, 0 operator), 2900
  Branch Sales (dave then erin); +16505550100 reaches the main menu.
  A call nobody answers within 20 s goes to voicemail; *97 plays your
  messages (1 replay, 7 delete, 9 save, # next). Transfer a call to *68 to
  park it; *88<slot> picks it up from any phone of the site.

  Ctrl-C stops it.
MSG
wait $pid
kill -TERM $cloud_pid 2>/dev/null; wait $cloud_pid
