#!/usr/bin/env bash
# Runs every Go fuzz target of the repository (every `func FuzzX(f
# *testing.F)` outside appliance/e2e) for FUZZTIME each, FUZZ_JOBS targets at
# a time with one fuzzing worker each, and prints a table of the results.
#
#   FUZZTIME   how long each target fuzzes (default 30s)
#   FUZZ_JOBS  targets fuzzed at once (default: the number of CPUs)
#   FUZZ_ONLY  an extended regexp on "package FuzzName" to run a subset
#   FUZZ_SKIP  an extended regexp of targets left out (default: the dial
#              plan's and the cloud's own diff's, which no outsider's bytes
#              reach; their seeds still run in make unit)
#   FUZZ_GO    the go command (default: go)
#
# New interesting inputs are minimized for at most a second
# (-fuzzminimizetime; Go's default is a minute, which stalls a 30 s run on
# the first large input it finds).
#
# Go before 1.27 can fail a duration-bound run with a bare "context deadline
# exceeded" when the time ends while a worker is mid-input
# (go.dev/issue/75804; the fix shipped in Go 1.27). A target whose run fails
# with that message alone, writing no failing input, is reported "ok*": a
# real failure always names the failing input it wrote to
# testdata/fuzz/FuzzX/ (and prints it).
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZTIME="${FUZZTIME:-30s}"
FUZZ_JOBS="${FUZZ_JOBS:-$(nproc)}"
FUZZ_ONLY="${FUZZ_ONLY:-.}"
FUZZ_SKIP="${FUZZ_SKIP:- (FuzzResolve|FuzzDiffJSON|FuzzDiffEdits|FuzzDiffObjectKey)$}"
FUZZ_GO="${FUZZ_GO:-go}"

# "package FuzzName" for every target.
targets="$(grep -rlE --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*\(f \*testing\.F\)' . |
  grep -v '^./appliance/e2e/' |
  while read -r file; do
    pkg="./$(dirname "${file#./}")"
    grep -oE '^func Fuzz[A-Za-z0-9_]*' "$file" | sed "s|^func |$pkg |"
  done | sort -u | grep -E -- "$FUZZ_ONLY" | grep -vE -- "$FUZZ_SKIP" || true)"
if [ -z "$targets" ]; then
  echo "fuzz: no target matches FUZZ_ONLY=$FUZZ_ONLY" >&2
  exit 1
fi

logs="$(mktemp -d)"
trap 'rm -rf "$logs"' EXIT

# Build each package's instrumented test binary first, one at a time with
# all CPUs (a one-input fuzz run), so that compiling one package does not eat
# the fuzzing time of another.
echo "fuzz: compiling $(echo "$targets" | cut -d' ' -f1 | sort -u | wc -l) packages"
echo "$targets" | sort -u -k1,1 | while read -r pkg name; do
  if ! out="$($FUZZ_GO test -run='^$' -fuzz="^$name\$" -fuzztime=1x "$pkg" 2>&1)"; then
    echo "$out" >&2
    echo "fuzz: $pkg does not build or its $name seeds fail" >&2
    exit 1
  fi
done

# shellcheck disable=SC2317 # run by xargs, through bash -c
run_one() {
  local pkg="$1" name="$2" log
  log="$logs/$(echo "$pkg" | tr '/.' '__')-$name.log"
  if $FUZZ_GO test -run='^$' -fuzz="^$name\$" -fuzztime="$FUZZTIME" -fuzzminimizetime=1s -parallel=1 "$pkg" >"$log" 2>&1; then
    echo "ok $pkg $name"
  elif grep -q '^    context deadline exceeded$' "$log" && ! grep -q 'Failing input written to' "$log"; then
    echo "ok* $pkg $name" # go.dev/issue/75804
  else
    echo "FAIL $pkg $name"
  fi
}
export -f run_one
export FUZZ_GO FUZZTIME logs

echo "fuzz: $(echo "$targets" | wc -l) targets, $FUZZTIME each, $FUZZ_JOBS at a time"
start=$(date +%s)
# shellcheck disable=SC2016 # expanded by that bash
results="$(echo "$targets" | xargs -P "$FUZZ_JOBS" -L 1 bash -c 'run_one "$0" "$1"')"
end=$(date +%s)

printf '%-5s %-34s %-28s %12s %s\n' result package target execs "new interesting"
fail=0
while read -r status pkg name; do
  log="$logs/$(echo "$pkg" | tr '/.' '__')-$name.log"
  last="$(grep -E '^fuzz: elapsed' "$log" | tail -1 || true)"
  execs="$(echo "$last" | sed -nE 's/.*execs: ([0-9]+).*/\1/p')"
  newi="$(echo "$last" | sed -nE 's/.*new interesting: ([0-9]+).*/\1/p')"
  printf '%-5s %-34s %-28s %12s %s\n' "$status" "$pkg" "$name" "${execs:-?}" "${newi:-?}"
  if [ "$status" = FAIL ]; then
    fail=1
    sed 's/^/    /' "$log"
  fi
done <<<"$results"
echo "fuzz: $(( end - start )) s"
if grep -q '^ok\*' <<<"$results"; then
  echo "fuzz: ok*: the run ended with go.dev/issue/75804's spurious \"context deadline exceeded\", no failing input"
fi
exit "$fail"
