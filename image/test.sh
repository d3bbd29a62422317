#!/usr/bin/env bash
# Boots the appliance image (make image) under QEMU and checks that it comes up:
# a NoCloud seed (user-data with an outpost: mapping: admin password, DHCP,
# site hq) configures it, GET /readyz answers 200 over HTTPS, a SIP OPTIONS
# over UDP gets 200, and the VM powers off cleanly on ACPI power-button.
# The image is never modified: each boot runs on a throw-away overlay.
#
# Boots (OUTPOST_IMAGE_TEST_BOOTS, space-separated; default all three):
#   qcow2-bios   the qcow2, SeaBIOS, virtio disk and NIC (Proxmox's defaults),
#                the NoCloud seed on an IDE CD-ROM
#   qcow2-uefi   the same under OVMF (UEFI, Secure Boot off)
#   ova-vmware   the OVA's VMDK (manifest checked), SeaBIOS, PVSCSI disk and
#                VMXNET3 NIC (the OVF's hardware), and instead of the NoCloud
#                seed an OVF environment CD (ovf-env.xml, ESXi's "iso"
#                transport) setting every vApp property the OVF declares
# Environment (optional):
#   OUTPOST_IMAGE_QCOW2 / OUTPOST_IMAGE_OVA  the images (default: newest in bin/)
#   OUTPOST_IMAGE_TEST_ACCEL  kvm or tcg (default: kvm when /dev/kvm is usable and
#                             the CPU has vmx/svm, else tcg)
#   OUTPOST_IMAGE_TEST_TIMEOUT  seconds from power-on to ready (default 600)
#   OUTPOST_IMAGE_TEST_KEEP=1  keep the work directory (serial logs) on success
set -Eeuo pipefail
cd "$(dirname "$0")/.."

log() { printf 'image-test: %s\n' "$*" >&2; }
die() { printf 'image-test: FAIL: %s\n' "$*" >&2; exit 1; }

# --- tools, from Debian's archive --------------------------------------------
need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
command -v qemu-img >/dev/null || need+=(qemu-utils)
command -v xorriso >/dev/null || need+=(xorriso)
command -v curl >/dev/null || need+=(curl)
command -v sipp >/dev/null || need+=(sip-tester)
command -v ss >/dev/null || need+=(iproute2)
[ -f /usr/share/seabios/bios-256k.bin ] || need+=(seabios)
[ -f /usr/share/OVMF/OVMF_CODE_4M.fd ] || need+=(ovmf)
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]}"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

newest() { # newest file matching a glob, or nothing
  local f best=""
  for f in "$@"; do
    [ -f "$f" ] || continue
    if [ -z "$best" ] || [ "$f" -nt "$best" ]; then best=$f; fi
  done
  printf '%s' "$best"
}
qcow2=${OUTPOST_IMAGE_QCOW2:-$(newest bin/outpost-*.qcow2)}
ova=${OUTPOST_IMAGE_OVA:-$(newest bin/outpost-*.ova)}
boots=${OUTPOST_IMAGE_TEST_BOOTS:-qcow2-bios qcow2-uefi ova-vmware}
timeout_s=${OUTPOST_IMAGE_TEST_TIMEOUT:-600}

accel=${OUTPOST_IMAGE_TEST_ACCEL:-}
if [ -z "$accel" ]; then
  accel=tcg
  # KVM needs /dev/kvm and hardware virtualization (vmx/svm): a /dev/kvm
  # without it (e.g. a nested host's PVM module) cannot run a stock kernel.
  if [ -r /dev/kvm ] && [ -w /dev/kvm ] && grep -qwE 'vmx|svm' /proc/cpuinfo; then accel=kvm; fi
fi
case "$accel" in
  kvm) accel_args=(-accel kvm -cpu host) ;;
  tcg) accel_args=(-accel "tcg,thread=multi" -cpu max) ;;
  *) die "OUTPOST_IMAGE_TEST_ACCEL must be kvm or tcg, not $accel" ;;
esac

work=$(mktemp -d "${TMPDIR:-/tmp}/outpost-image-test.XXXXXX")
qemu_pid=""
reader_pid=""
failed=1
cleanup() {
  [ -z "$reader_pid" ] || kill "$reader_pid" 2>/dev/null || true
  if [ -n "$qemu_pid" ] && kill -0 "$qemu_pid" 2>/dev/null; then
    kill "$qemu_pid" 2>/dev/null || true
    wait "$qemu_pid" 2>/dev/null || true
  fi
  if [ "$failed" = 0 ] && [ "${OUTPOST_IMAGE_TEST_KEEP:-0}" != 1 ]; then
    rm -rf "$work"
  else
    log "work directory kept: $work"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
trap 'log "FAIL: line $LINENO: $BASH_COMMAND exited with $?"' ERR

# A free port on 127.0.0.1 for tcp or udp (asked again if QEMU loses a race).
free_port() {
  local proto=$1 p
  for _ in $(seq 50); do
    p=$((20000 + RANDOM % 40000))
    if [ "$proto" = tcp ]; then
      [ -z "$(ss -Htln "sport = :$p")" ] && { echo "$p"; return; }
    else
      [ -z "$(ss -Huln "sport = :$p")" ] && { echo "$p"; return; }
    fi
  done
  die "no free $proto port found"
}

# --- the seed ------------------------------------------------------------------
admin_password="image-test-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
mkdir -p "$work/seed"
cat >"$work/seed/meta-data" <<EOF
instance-id: outpost-image-test-$$
local-hostname: outpost-test
EOF
cat >"$work/seed/user-data" <<EOF
#cloud-config
outpost:
  admin_password: "$admin_password"
  network:
    dhcp: true
  site: hq
EOF
xorriso -as genisoimage -quiet -output "$work/seed.iso" -volid cidata -joliet -rock \
  "$work/seed/user-data" "$work/seed/meta-data" 2>/dev/null

# A SIP OPTIONS and its 200, for SIPp.
cat >"$work/options.xml" <<'EOF'
<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="OPTIONS to the appliance">
  <send retrans="500">
    <![CDATA[
      OPTIONS sip:[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      Max-Forwards: 70
      From: <sip:image-test@[local_ip]:[local_port]>;tag=[call_number]
      To: <sip:[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 OPTIONS
      Contact: <sip:image-test@[local_ip]:[local_port]>
      Accept: application/sdp
      Content-Length: 0

    ]]>
  </send>
  <recv response="200" timeout="4000"/>
</scenario>
EOF

# The OVF environment ESXi would hand the VM (the "iso" transport: a CD
# with ovf-env.xml): every vApp property the descriptor declares, empty but
# for the admin password, the site and the host name. The setup refuses a
# key it does not know, so this also checks the descriptor against it.
ovf_env() {
  local ovf=$1 iso=$2 dir key value
  dir=$(dirname "$iso")/ovf-env
  mkdir -p "$dir"
  {
    printf '<?xml version="1.0" encoding="UTF-8"?>\n'
    printf '<Environment xmlns="http://schemas.dmtf.org/ovf/environment/1" xmlns:oe="http://schemas.dmtf.org/ovf/environment/1" oe:id="">\n'
    printf '  <PlatformSection><Kind>image-test</Kind></PlatformSection>\n  <PropertySection>\n'
    grep -o 'ovf:key="outpost\.[a-z_]*"' "$ovf" | cut -d'"' -f2 | while read -r key; do
      case "$key" in
        outpost.admin_password) value=$admin_password ;;
        outpost.site) value=hq ;;
        outpost.hostname) value=outpost-ovf ;;
        *) value="" ;;
      esac
      printf '    <Property oe:key="%s" oe:value="%s"/>\n' "$key" "$value"
    done
    printf '  </PropertySection>\n</Environment>\n'
  } >"$dir/ovf-env.xml"
  grep -q 'oe:key="outpost.admin_password"' "$dir/ovf-env.xml" || die "$ovf declares no outpost.admin_password property"
  xorriso -as genisoimage -quiet -output "$iso" -volid "OVF ENV" -joliet -rock "$dir/ovf-env.xml" 2>/dev/null
}

# --- one boot ------------------------------------------------------------------
# qmp: QEMU's machine protocol over a pair of FIFOs (no socat needed).
# The write is bounded: it would block if QEMU never opened its end.
# shellcheck disable=SC2016 # expanded by that sh
qmp() { timeout 10 /bin/sh -c 'printf "%s\n" "$1" >"$2"' qmp "$1" "$run/qmp.in"; }

boot() {
  local kind=$1 disk fmt firmware hw seed="$work/seed.iso" want_node=outpost-test
  run="$work/$kind"
  mkdir -p "$run"
  case "$kind" in
    qcow2-bios) [ -n "$qcow2" ] || die "no image: run make image"; disk=$qcow2 fmt=qcow2 firmware=bios hw=virtio ;;
    qcow2-uefi) [ -n "$qcow2" ] || die "no image: run make image"; disk=$qcow2 fmt=qcow2 firmware=uefi hw=virtio ;;
    ova-vmware)
      [ -n "$ova" ] || die "no OVA: run make image"
      mkdir -p "$run/ova"
      tar -xf "$ova" -C "$run/ova"
      local first
      first=$(tar -tf "$ova" | sed -n 1p)
      case "$first" in *.ovf) ;; *) die "$ova: the first file is $first, not the .ovf" ;; esac
      (cd "$run/ova" && sed -E 's/^SHA256\(([^)]*)\)= ([0-9a-f]{64})$/\2  \1/' ./*.mf | sha256sum --check --quiet) ||
        die "$ova: a file does not match the manifest"
      disk=$(ls "$run"/ova/*.vmdk)
      fmt=vmdk firmware=bios hw=vmware
      ovf_env "$(ls "$run"/ova/*.ovf)" "$run/ovf-env.iso"
      seed="$run/ovf-env.iso" want_node=outpost-ovf
      ;;
    *) die "unknown boot $kind (want qcow2-bios, qcow2-uefi or ova-vmware)" ;;
  esac
  # The qcow2 boots get a disk 2 GiB bigger than the image's: the root
  # partition and file system must grow into it (systemd-repart, growfs).
  local size grow=""
  size=$(qemu-img info --output=json "$disk" | sed -n 's/^ *"virtual-size": \([0-9]*\).*/\1/p')
  [ "$fmt" = qcow2 ] && grow=$((size + 2 * 1024 * 1024 * 1024))
  qemu-img create -q -f qcow2 -F "$fmt" -b "$(realpath "$disk")" "$run/overlay.qcow2" $grow

  local https_port sip_port
  https_port=$(free_port tcp)
  sip_port=$(free_port udp)
  local args=(-name "outpost-$kind" -machine pc "${accel_args[@]}" -m 2048 -smp 2
    -display none -vga std -no-reboot
    -serial "file:$run/serial.log"
    -chardev "pipe,id=qmp,path=$run/qmp" -mon "chardev=qmp,mode=control"
    -netdev "user,id=net0,hostfwd=tcp:127.0.0.1:$https_port-:443,hostfwd=udp:127.0.0.1:$sip_port-:5060")
  if [ "$firmware" = uefi ]; then
    cp /usr/share/OVMF/OVMF_VARS_4M.fd "$run/efivars.fd"
    args+=(-drive "if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd"
      -drive "if=pflash,format=raw,unit=1,file=$run/efivars.fd")
  fi
  if [ "$hw" = vmware ]; then
    args+=(-device "pvscsi,id=scsi0"
      -drive "if=none,id=disk0,file=$run/overlay.qcow2,format=qcow2"
      -device "scsi-hd,bus=scsi0.0,drive=disk0,bootindex=0"
      -device "vmxnet3,netdev=net0"
      -drive "if=ide,index=1,media=cdrom,readonly=on,file=$seed")
  else
    args+=(-drive "if=virtio,file=$run/overlay.qcow2,format=qcow2"
      -device "virtio-net-pci,netdev=net0"
      -drive "if=ide,index=1,media=cdrom,readonly=on,file=$seed")
  fi

  mkfifo "$run/qmp.in" "$run/qmp.out"
  log "$kind: booting $(basename "$disk") ($accel, $firmware, $hw); HTTPS 127.0.0.1:$https_port, SIP udp 127.0.0.1:$sip_port"
  local t0 t_ready
  t0=$(date +%s)
  qemu-system-x86_64 "${args[@]}" >"$run/qemu.log" 2>&1 &
  qemu_pid=$!
  # Keep reading QEMU's answers so it never blocks on a full pipe.
  cat "$run/qmp.out" >"$run/qmp.log" &
  reader_pid=$!
  qmp '{"execute":"qmp_capabilities"}'

  fail() {
    log "$kind: FAIL: $*"
    log "$kind: serial log $run/serial.log; its last 40 lines:"
    tail -n 40 "$run/serial.log" 2>/dev/null | sed 's/^/    /' >&2 || true
    [ -s "$run/qemu.log" ] && sed 's/^/    qemu: /' "$run/qemu.log" >&2
    exit 1
  }

  # Ready: /readyz 200 over HTTPS (TLS 1.2 or newer; the certificate is the
  # appliance's self-signed one, so it is not verified).
  local code="" deadline=$((t0 + timeout_s))
  while :; do
    kill -0 "$qemu_pid" 2>/dev/null || fail "QEMU exited before the node was ready"
    code=$(curl -sk --tlsv1.2 --max-time 5 -o "$run/readyz.json" -w '%{http_code}' "https://127.0.0.1:$https_port/readyz" 2>/dev/null || true)
    [ "$code" = 200 ] && break
    [ "$(date +%s)" -lt "$deadline" ] || fail "GET /readyz over HTTPS did not answer 200 within $timeout_s s (last: ${code:-no answer}$( [ -s "$run/readyz.json" ] && printf ', %s' "$(head -c 300 "$run/readyz.json")"))"
    sleep 2
  done
  t_ready=$(($(date +%s) - t0))
  local tls
  tls=$(curl -sk --tlsv1.2 --max-time 5 -o /dev/null -w '%{scheme} HTTP/%{http_version}, certificate verify result %{ssl_verify_result}' "https://127.0.0.1:$https_port/readyz" || true)
  log "$kind: GET https://…/readyz = 200 after $t_ready s ($tls: TLS 1.2+, self-signed, not verified)"

  # The seed was applied: the node's site is the seed's.
  local status
  status=$(curl -sk --max-time 5 "https://127.0.0.1:$https_port/api/v1/status" || true)
  grep -q '"site": *"hq"' <<<"$status" || fail "/api/v1/status does not say site hq (the seed's): ${status:0:300}"
  grep -q "\"node_id\": *\"$want_node\"" <<<"$status" ||
    fail "/api/v1/status does not say node_id $want_node (the seed's host name): ${status:0:300}"
  log "$kind: status: $(grep -o '"node_id": *"[^"]*"\|"site": *"[^"]*"\|"mode": *"[^"]*"' <<<"$status" | tr '\n' ' ')"

  # SIP: OPTIONS over UDP answered 200.
  local sipp_port ok=""
  for _ in 1 2 3 4 5; do
    sipp_port=$(free_port udp)
    if (cd "$run" && timeout 30 sipp -sf "$work/options.xml" -i 127.0.0.1 -p "$sipp_port" -t u1 \
         -m 1 -l 1 -nostdin -timeout 15s -timeout_error -trace_err -error_file "$run/sipp-errors.log" \
         "127.0.0.1:$sip_port" >"$run/sipp.log" 2>&1); then
      ok=1; break
    fi
    [ "$(date +%s)" -lt "$deadline" ] || break
    sleep 2
  done
  [ -n "$ok" ] || fail "SIP OPTIONS to udp 127.0.0.1:$sip_port got no 200 (sipp: $run/sipp.log)"
  log "$kind: SIP OPTIONS over UDP = 200"

  # Clean power-off: ACPI power button, then a deadline.
  qmp '{"execute":"system_powerdown"}'
  local t_off
  t_off=$(date +%s)
  while kill -0 "$qemu_pid" 2>/dev/null; do
    if [ $(($(date +%s) - t_off)) -ge 90 ]; then
      kill "$qemu_pid" 2>/dev/null || true
      fail "no power-off within 90 s of the ACPI power button"
    fi
    sleep 1
  done
  wait "$qemu_pid" 2>/dev/null || true
  qemu_pid=""
  wait "$reader_pid" 2>/dev/null || true
  reader_pid=""
  grep -q 'reboot: Power down' "$run/serial.log" || fail "QEMU ended but the kernel did not say 'reboot: Power down'"
  if [ -n "$grow" ]; then
    # GPT entry 3 (the root): its last LBA, 40 bytes into the third
    # 128-byte entry of the array at LBA 2.
    local last
    qemu-img dd -f qcow2 -O raw if="$run/overlay.qcow2" of="$run/head.raw" bs=1M count=1
    last=$(od -An -t u8 -j $((1024 + 2 * 128 + 40)) -N 8 "$run/head.raw" | tr -d ' ')
    [ $(((last + 1) * 512)) -gt "$size" ] ||
      fail "the root partition did not grow into the bigger disk (ends at $(((last + 1) * 512)) bytes, the image is $size)"
    grep -q 'Successfully resized "/"' "$run/serial.log" || fail "the root file system was not grown (no systemd-growfs message)"
    log "$kind: root partition and file system grew to the 2 GiB bigger disk"
  fi
  log "$kind: PASS: ready in $t_ready s, powered off in $(($(date +%s) - t_off)) s"
  results+=("$kind: ready (HTTPS /readyz 200, SIP OPTIONS 200) $t_ready s after power-on ($accel)")
}

results=()
for b in $boots; do
  boot "$b"
done
failed=0
log "PASS"
printf '  %s\n' "${results[@]}" >&2
