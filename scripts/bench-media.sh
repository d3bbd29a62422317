#!/usr/bin/env bash
# RTP relay capacity: the Outpost relay (appliance/media) and rtpengine from
# Debian (userspace forwarding, --table=-1) side by side, driven by the same
# generator (appliance/media/cmd/rtpload) over rtpengine's NG protocol, with
# G.711-sized RTP at 50 packets/s each way per call. Prints a markdown table.
#
#   scripts/bench-media.sh                       # 100 250 500 750 calls, 20 s each
#   CALLS="500 500 500" DURATION=15s scripts/bench-media.sh   # repeats: VMs are noisy
#   RELAY_CPUS=0,1 scripts/bench-media.sh        # relays on both CPUs (generator on CPU 1)
#   RT_PRIO=20 scripts/bench-media.sh            # relays and generator SCHED_FIFO 20 (chrt):
#                                                # other processes of the machine cannot delay them
#
# Both relays run in the foreground on loopback, started and killed here. With
# two CPUs or more, the relay under test is pinned to RELAY_CPUS (default CPU 0)
# and the generator to CPU 1 (taskset): the relay gets one core of its own, and
# the generator, which on a VM costs as much CPU as the relay, cannot starve it.
#
# Each load gives three rows and a measure of the relay's CPU:
# - "no relay": the generator sends A to B directly, the same sockets and
#   pacing: the generator's and loopback's own jitter, the floor of the
#   end-to-end figures.
# - "Outpost relay": end-to-end added jitter as the generator sees it (kernel
#   arrival stamp minus the send time in the packet, less the smallest seen)
#   and, measured inside the relay (rtpload serve -residence), each packet's
#   time in the relay, from the kernel's arrival stamp on the relay's socket
#   to just before the relay sends it on: the delay the relay adds, waiting
#   for its CPU and behind other packets included.
# - "rtpengine": end-to-end only.
# - "CPU 0 wait p99": just before the rows, `rtpload cpuwait` spins on the
#   relay's CPU for 2 s and reports how long a packet arriving at random would
#   have waited for that CPU (other processes, the hypervisor): what even a
#   relay that cost nothing would add there. Above a millisecond or so the
#   machine is too busy for the rows to describe the relays.
# The figures mean something only on an otherwise idle machine: the notes
# under the table give, per row, the CPU the generator, other processes and the
# hypervisor (steal) took, and flag a row where the generator could not keep
# its pace. Not part of make or CI (it needs root for apt-get).
set -euo pipefail

CALLS="${CALLS:-100 250 500 750}"
DURATION="${DURATION:-20s}"
WARMUP="${WARMUP:-2s}"
RELAY_CPUS="${RELAY_CPUS:-0}"
RT_PRIO="${RT_PRIO:-}"
GO="${GO:-go}"
OUTPOST_NG=127.0.0.1:22230
RTPENGINE_NG=127.0.0.1:22223
# Port ranges below Linux's ephemeral range (32768-60999), where the
# generator's own sockets land.
OUTPOST_PORTS=20000-25999
RTPENGINE_MIN=26000
RTPENGINE_MAX=31999

cd "$(dirname "$0")/.."
work="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do
    kill "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

install_rtpengine() {
  if command -v rtpengine >/dev/null 2>&1; then
    return
  fi
  echo "installing rtpengine-daemon from Debian..." >&2
  # Keep the package's init script from starting a daemon during install.
  local guard=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    guard=1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends rtpengine-daemon >&2
  if [ -n "$guard" ]; then
    rm -f /usr/sbin/policy-rc.d
  fi
}

# Stop and disable the packaged service, whatever the init system.
stop_packaged_rtpengine() {
  if [ -d /run/systemd/system ]; then
    systemctl disable --now rtpengine-daemon.service >/dev/null 2>&1 || true
  else
    systemctl disable rtpengine-daemon.service >/dev/null 2>&1 || true
    if [ -x /etc/init.d/rtpengine-daemon ]; then
      /etc/init.d/rtpengine-daemon stop >/dev/null 2>&1 || true
    fi
  fi
  local pidfile
  for pidfile in /run/rtpengine/rtpengine-daemon.pid /run/rtpengine-daemon.pid; do
    if [ -s "$pidfile" ]; then
      kill "$(cat "$pidfile")" 2>/dev/null || true
    fi
  done
}

install_rtpengine
stop_packaged_rtpengine

"$GO" build -o "$work/rtpload" ./appliance/media/cmd/rtpload

relay_cpu=()
load_cpu=()
probe_cpu=()
pinning="not pinned (one CPU)"
if [ "$(nproc)" -ge 2 ]; then
  relay_cpu=(taskset -c "$RELAY_CPUS")
  load_cpu=(taskset -c 1)
  probe_cpu=(taskset -c "${RELAY_CPUS%%,*}")
  pinning="relays pinned to CPU $RELAY_CPUS, generator to CPU 1"
fi
if [ -n "$RT_PRIO" ]; then
  relay_cpu=(chrt -f "$RT_PRIO" "${relay_cpu[@]}")
  load_cpu=(chrt -f "$RT_PRIO" "${load_cpu[@]}")
  pinning="$pinning, both SCHED_FIFO $RT_PRIO"
fi

"${relay_cpu[@]}" "$work/rtpload" serve -residence -ng "$OUTPOST_NG" -ports "$OUTPOST_PORTS" >"$work/outpost.log" 2>&1 &
pids+=($!)
outpost_pid=$!

"${relay_cpu[@]}" rtpengine --config-file=none --foreground --log-stderr --log-level=4 \
  --table=-1 --interface=127.0.0.1 --listen-ng="$RTPENGINE_NG" \
  --port-min="$RTPENGINE_MIN" --port-max="$RTPENGINE_MAX" \
  --delete-delay=0 --timeout=3600 >"$work/rtpengine.log" 2>&1 &
pids+=($!)
rtpengine_pid=$!

"$work/rtpload" ping -ng "$OUTPOST_NG" -wait 10s || { cat "$work/outpost.log" >&2; exit 1; }
"$work/rtpload" ping -ng "$RTPENGINE_NG" -wait 10s || { cat "$work/rtpengine.log" >&2; exit 1; }

echo "# RTP relay: $(nproc) CPUs ($pinning), load average $(cut -d' ' -f1-3 /proc/loadavg) before the runs;" \
  "rtpengine $(rtpengine --version 2>&1 | sed -n 's/^Version: //p'); $("$GO" version | cut -d' ' -f3)"
echo "# ${DURATION} measured per row after ${WARMUP} warm-up; G.711, 50 packets/s each way per call;" \
  "added jitter = (arrival - send) minus the smallest seen; in relay = kernel arrival stamp at the relay to its send;" \
  "CPU = relay process, % of one core; CPU ${RELAY_CPUS%%,*} wait p99 = how long a packet arriving at random waited for the relay's CPU, measured just before"
echo
echo "| relay | calls | pps | loss % | added jitter p50 ms | p99 ms | max ms | in relay p50 ms | p99 ms | max ms | CPU% | CPU ${RELAY_CPUS%%,*} wait p99 ms |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
load() { # label cpu-wait run-args...
  local label=$1 wait=$2
  shift 2
  "${load_cpu[@]}" "$work/rtpload" run -row -label "$label" "$@" \
    -duration "$DURATION" -warmup "$WARMUP" 2>>"$work/notes" | sed "s/|\$/| $wait |/" || { cat "$work/notes" >&2; exit 1; }
}
cpuwait() { "${probe_cpu[@]}" "$work/rtpload" cpuwait -duration 2s -short; }
for n in $CALLS; do
  load "no relay" "$(cpuwait)" -direct -calls "$n"
  load "Outpost relay" "$(cpuwait)" -ng "$OUTPOST_NG" -pid "$outpost_pid" -calls "$n"
  load "rtpengine" "$(cpuwait)" -ng "$RTPENGINE_NG" -pid "$rtpengine_pid" -calls "$n"
done
echo
sed 's/^/# /' "$work/notes"
