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

# package | benchmark regexp | -benchtime | target
benches=(
  "./appliance/e2e/|BenchmarkSnapshotApply10k|3x|under 3 s end to end (ns/op); peak RSS per node under 150 MiB"
  "./appliance/e2e/|BenchmarkRegister10k|1x|at least 5,000 registrations/s, under 1 % failed (this run offers 6,000/s); RSS under 200 MiB with 10,000 bindings, under 500 MiB at peak (issue 3)"
  "./appliance/e2e/|BenchmarkCalls|1x|at least 1,000 calls/s under 1 % failures (issue 3; this run offers 1,000/s)"
  "./appliance/cluster/|BenchmarkRaftApplyBatched|100000x|at least 20,000 commands/s"
  "./appliance/cluster/|BenchmarkRaftApplySmall|50000x|— (one Raft entry per command, for comparison)"
  "./appliance/store/|BenchmarkReplaceConfig10k|10x|— (part of the apply above)"
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
  sed -n '/<!-- bench:end -->/,$p' "$out"
} >"$out.new"
mv "$out.new" "$out"
echo "bench: wrote $out" >&2
