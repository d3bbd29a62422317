#!/usr/bin/env bash
# `make bench`: runs the benchmarks that carry the project's speed and memory
# targets and rewrites the generated table in docs/performance.md with what
# this machine measured, each row with the command that produced it.
set -euo pipefail
cd "$(dirname "$0")/.."

out=docs/performance.md
log=$(mktemp)
rows=$(mktemp)
trap 'rm -f "$log" "$rows"' EXIT

# package | benchmark (sub-benchmark) name | -benchtime | target
# The SIP load rows run Outpost and Kamailio 5.6 (scripts/kamailio-deps.sh kamailio-sqlite-modules
# installs it) on the same SIPp scenarios and loads, one after the other.
kam="Kamailio 5.6, same scenario, same run"
benches=(
  "./appliance/e2e/|BenchmarkSnapshotApply10k|3x|under 3 s end to end (ns/op); peak RSS per node under 150 MiB"
  "./appliance/e2e/|BenchmarkCloudFirstSync10k|1x|under 5 s (issue 4)"
  "./appliance/e2e/|BenchmarkCloudEditLatency|50x|p99 under 1 s (issue 4)"
  "./appliance/e2e/|BenchmarkJournalUpload100k|1x|under 10 s (issue 4)"
  "./appliance/e2e/|BenchmarkRegister10k/offered-6000|1x|at least 5,000 registrations/s, under 1 % failed (6,000/s offered); steady RSS under 200 MiB with 10,000 bindings, peak under 500 MiB (issue 3)"
  "./appliance/e2e/|BenchmarkKamailioRegister10k/offered-6000|1x|${kam}"
  "./appliance/e2e/|BenchmarkRegister10k/capacity|1x|at least half of Kamailio's capacity (next row); peak RSS under 500 MiB"
  "./appliance/e2e/|BenchmarkKamailioRegister10k/capacity|1x|${kam}"
  "./appliance/e2e/|BenchmarkClusterRegister10k/offered-6000|1x|— (3 nodes, one SIPp per node, a third of the users each)"
  "./appliance/e2e/|BenchmarkClusterRegister10k/capacity|1x|—"
  "./appliance/e2e/|BenchmarkCalls/offered-1100|1x|at least 1,000 calls/s under 1 % failures (issue 3; 1,100/s offered for 10 s)"
  "./appliance/e2e/|BenchmarkKamailioCalls/offered-1100|1x|${kam}"
  "./appliance/e2e/|BenchmarkCalls/capacity|1x|at least a fifth of Kamailio's capacity (next row); peak RSS under 500 MiB"
  "./appliance/e2e/|BenchmarkKamailioCalls/capacity|1x|${kam}"
  "./appliance/e2e/|BenchmarkClusterCalls/offered-1100|1x|— (a phone on n1 calls one on n3)"
  "./appliance/e2e/|BenchmarkClusterCalls/capacity|1x|—"
  "./appliance/cluster/|BenchmarkRaftApplyBatched|100000x|at least 20,000 commands/s"
  "./appliance/cluster/|BenchmarkRaftApplySmall|50000x|— (one Raft entry per command, for comparison)"
  "./appliance/store/|BenchmarkReplaceConfig10k|10x|— (part of the apply above)"
  "./appliance/store/|BenchmarkApplyChanges10k|200x|— (one edit of that account, as each node applies it)"
  "./appliance/store/|BenchmarkLookupDial|20000x|—"
  "./appliance/store/|BenchmarkUserByUsername|20000x|—"
  "./account/|BenchmarkValidate10k|20x|—"
  "./account/|BenchmarkDecode10k|10x|—"
)

for b in "${benches[@]}"; do
  IFS='|' read -r pkg name benchtime target <<<"$b"
  cmd="go test -run '^\$' -bench '^${name}\$' -benchtime ${benchtime} -benchmem ${pkg}"
  echo "bench: $cmd" >&2
  one=$(mktemp)
  eval "$cmd" >"$one" 2>&1 || true
  cat "$one" >>"$log"
  if ! grep -qE "^${name}" "$one" && grep -q -- '--- SKIP' "$one"; then
    why=$(grep -A1 -- '--- SKIP' "$one" | tail -1 | sed 's/^ *[a-z_]*\.go:[0-9]*: //')
    printf '| %s | skipped: %s | %s | `%s` |\n' "$name" "$why" "$target" "$cmd" >>"$rows"
    rm -f "$one"
    continue
  fi
  if ! grep -qE "^${name}" "$one"; then
    # A benchmark that failed gets a row saying so, and its output on stderr.
    grep -vE '^\s+time=' "$one" | tail -20 >&2
    printf '| %s | **failed in this run** (rerun the command to see why) | %s | `%s` |\n' "$name" "$target" "$cmd" >>"$rows"
    rm -f "$one"
    continue
  fi
  grep -E "^${name}" "$one" | while read -r line; do
    # name-N  iterations  value unit  value unit ...
    set -- $line
    shift 2
    figures=""
    while [ $# -ge 2 ]; do
      v=$1 u=$2; shift 2
      case $u in
        ns/op) v=$(awk -v n="$v" 'BEGIN{ if (n >= 1e9) printf "%.2f s/op", n/1e9; else if (n >= 1e6) printf "%.1f ms/op", n/1e6; else if (n >= 1e3) printf "%.1f µs/op", n/1e3; else printf "%d ns/op", n }'); u="" ;;
      esac
      figures+="${figures:+, }${v}${u:+ $u}"
    done
    printf '| %s | %s | %s | `%s` |\n' "$name" "$figures" "$target" "$cmd" >>"$rows"
  done
  rm -f "$one"
done

# Outpost's capacity as a share of Kamailio's, both from this run.
figure() { # benchmark name, unit: the value before the unit on its line
  grep -E "^$1-[0-9]+[[:space:]]" "$log" | awk -v u="$2" '{ for (i = 3; i < NF; i++) if ($(i+1) == u) print $i }' | head -1
}
ratio() { # outpost kamailio unit
  local o k
  o=$(figure "$1" "$3") k=$(figure "$2" "$3")
  if [ -n "$o" ] && [ -n "$k" ]; then awk -v o="$o" -v k="$k" 'BEGIN { printf "%.2f (%.0f against %.0f)", o / k, o, k }'; else echo "not measured"; fi
}
share="Outpost's capacity as a share of Kamailio's in this run: registrations $(ratio BenchmarkRegister10k/capacity BenchmarkKamailioRegister10k/capacity registrations/s) (target at least 0.5), calls $(ratio BenchmarkCalls/capacity BenchmarkKamailioCalls/capacity calls/s) (target at least 0.2)."

cpu=$(grep -m1 '^cpu:' "$log" | cut -d' ' -f2- || true)
{
  sed '/<!-- bench:begin -->/q' "$out"
  echo
  echo "Measured $(date -u +%Y-%m-%d) on $(nproc) cores (${cpu:-unknown cpu}), $(go version | cut -d' ' -f3)."
  echo
  echo "| benchmark | result | target | command |"
  echo "|---|---|---|---|"
  cat "$rows"
  echo
  echo "$share"
  echo
  sed -n '/<!-- bench:end -->/,$p' "$out"
} >"$out.new"
mv "$out.new" "$out"
echo "bench: wrote $out" >&2
scripts/bench-conference.sh # issue 8: conferences mixed by one node, send-time jitter (its own table in docs/performance.md)
