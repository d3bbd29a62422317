#!/usr/bin/env bash
# Builds the Outpost appliance image from the outpost .deb (make deb):
#   bin/outpost-<version>.qcow2  compressed qcow2 (Proxmox, KVM, OpenStack)
#   bin/outpost-<version>.ova    OVF 1.0 + streamOptimized VMDK + SHA256 manifest (ESXi)
# Debian 12, one disk: GPT with a BIOS boot partition, an ESP and the root
# file system, so it boots under BIOS and UEFI. No loop device and no mount
# on the host: mmdebstrap fills a directory, mke2fs -d makes the file system
# from it, sfdisk/dd/mtools assemble the disk. See image/README.md.
#
# Environment (all optional):
#   OUTPOST_DEB            the .deb to install (default: newest bin/outpost_*_amd64.deb)
#   OUTPOST_IMAGE_CACHE    cache directory (default: ~/.cache/outpost/image)
#   OUTPOST_IMAGE_REFRESH  1: rebuild the cached Debian base even if it is fresh
#   OUTPOST_IMAGE_MAX_AGE_DAYS  rebuild the base when older than this (default 7)
#   OUTPOST_IMAGE_DISK_GB  virtual disk size in GiB (default 8; the root grows on a bigger disk)
#   OUTPOST_IMAGE_MIRROR   Debian mirror (default http://deb.debian.org/debian)
#   OUTPOST_IMAGE_SECURITY Debian security mirror (default http://deb.debian.org/debian-security)
#   OUTPOST_IMAGE_EXTRA_PACKAGES  more Debian packages, comma-separated (e.g. openssh-server)
set -Eeuo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
start=$(date +%s)

log() { printf 'image: %s\n' "$*" >&2; }
die() { printf 'image: error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root (debootstrap and chroot need it); the disk itself is assembled without loop devices or mounts"

# --- tools, from Debian's archive --------------------------------------------
need=()
command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
command -v qemu-img >/dev/null || need+=(qemu-utils)
command -v mkfs.vfat >/dev/null || need+=(dosfstools)
command -v mcopy >/dev/null || need+=(mtools)
command -v sfdisk >/dev/null || need+=(fdisk)
command -v mke2fs >/dev/null || need+=(e2fsprogs)
command -v grub-mkimage >/dev/null || need+=(grub-common)
[ -f /usr/lib/grub/i386-pc/boot.img ] || need+=(grub-pc-bin)
[ -d /usr/lib/grub/x86_64-efi ] || need+=(grub-efi-amd64-bin)
command -v xmllint >/dev/null || need+=(libxml2-utils)
command -v unshare >/dev/null || need+=(util-linux)
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# --- inputs --------------------------------------------------------------------
deb=${OUTPOST_DEB:-}
if [ -z "$deb" ]; then
  # shellcheck disable=SC2012 # names are ours: outpost_<version>_amd64.deb
  deb=$(ls -t bin/outpost_*_amd64.deb 2>/dev/null | head -n1 || true)
fi
if [ -z "$deb" ] || [ ! -f "$deb" ]; then die "no outpost .deb: run make deb (or set OUTPOST_DEB)"; fi
deb=$(realpath "$deb")
version=$(dpkg-deb -f "$deb" Version)
version=${version#*:}          # no epoch in file names
[ -n "$version" ] || die "$deb has no Version"
log "outpost $version from ${deb#"$repo"/}"

suite=bookworm
mirror=${OUTPOST_IMAGE_MIRROR:-http://deb.debian.org/debian}
security=${OUTPOST_IMAGE_SECURITY:-http://deb.debian.org/debian-security}
disk_gb=${OUTPOST_IMAGE_DISK_GB:-8}
if ! [[ $disk_gb =~ ^[0-9]+$ ]] || [ "$disk_gb" -lt 2 ]; then die "OUTPOST_IMAGE_DISK_GB must be a whole number of GiB, at least 2"; fi
cache=${OUTPOST_IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/outpost/image}
max_age_days=${OUTPOST_IMAGE_MAX_AGE_DAYS:-7}
mkdir -p "$cache" bin

# The Debian packages of the image. The cloud kernel is the small one: it has
# virtio (Proxmox, KVM), vmw_pvscsi and vmxnet3 (ESXi, the OVA's hardware),
# ata_piix (IDE CD-ROM for seeds), Hyper-V and NVMe; not AHCI, LSI or e1000.
packages=(
  linux-image-cloud-amd64 initramfs-tools zstd
  systemd systemd-sysv systemd-timesyncd systemd-resolved udev dbus
  e2fsprogs kmod iproute2 iputils-ping nftables ca-certificates netbase tzdata
  procps less
  open-vm-tools    # ESXi: clean shutdown, guest IP, the OVF environment (guestinfo)
  qemu-guest-agent # Proxmox/KVM: clean shutdown, guest IP
)
# What the outpost package depends on (first of each alternative), so that
# dpkg -i needs no network when the base comes from the cache.
while IFS= read -r dep; do
  dep=${dep%%|*}; dep=${dep%%(*}; dep=${dep%%:*}; dep=${dep// /}
  [ -n "$dep" ] && packages+=("$dep")
done < <(dpkg-deb -f "$deb" Depends Pre-Depends | tr ',' '\n' | sed -e 's/^[A-Za-z-]*: //')
if [ -n "${OUTPOST_IMAGE_EXTRA_PACKAGES:-}" ]; then
  IFS=', ' read -r -a extra <<<"$OUTPOST_IMAGE_EXTRA_PACKAGES"
  packages+=("${extra[@]}")
fi
include=$(printf '%s\n' "${packages[@]}" | sort -u | paste -sd, -)

# --- work area -----------------------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/outpost-image.XXXXXX")
cleanup() {
  local rc=$?
  rm -rf "$work"
  [ -z "${base_tmp:-}" ] || rm -rf "$base_tmp"
  [ $rc -eq 0 ] || log "FAILED (exit $rc)"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
trap 'log "line $LINENO: $BASH_COMMAND exited with $?"' ERR

# Runs a command chrooted in $root, in a private mount namespace: the /proc
# it mounts there is gone when the command ends, whatever happens.
in_root() {
  # shellcheck disable=SC2016 # expanded by that sh
  unshare --mount --propagation private --fork -- /bin/sh -euc '
    r=$1; shift
    mount -t proc proc "$r/proc"
    exec chroot "$r" "$@"' in_root "$root" "$@"
}

# --- 1. the Debian base, cached ----------------------------------------------
# Keyed on everything that goes into it; rebuilt when older than max_age_days
# so security updates get in.
# Bump v1 when the mmdebstrap options below change.
recipe="v1 $suite $mirror $security $include"
key=$(printf '%s' "$recipe" | sha256sum | cut -c1-16)
base="$cache/base-$key"
if [ -f "$base/.built" ] && [ "${OUTPOST_IMAGE_REFRESH:-0}" != 1 ] &&
   [ -z "$(find "$base/.built" -mtime "+$max_age_days")" ]; then
  log "Debian base from the cache ($base, built $(date -u -r "$base/.built" +%F))"
else
  log "building the Debian base with mmdebstrap ($suite, $(wc -w <<<"${include//,/ }") packages)"
  t0=$(date +%s)
  base_tmp="$cache/.base-$key.tmp"
  rm -rf "$base_tmp"
  # mmdebstrap mounts /proc, /sys and /dev in the target while it runs;
  # unshare keeps those mounts out of the host's namespace.
  # shellcheck disable=SC2016 # the hook is run by mmdebstrap, $1 the target
  unshare --mount --propagation private -- mmdebstrap \
    --mode=root --variant=minbase --format=directory \
    --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
    --aptopt='Acquire::Retries "3"' \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-include=/usr/share/locale/locale.alias' \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --essential-hook='mkdir -p "$1/etc/initramfs-tools/conf.d" && echo RESUME=none >"$1/etc/initramfs-tools/conf.d/resume"' \
    --include="$include" \
    "$suite" "$base_tmp" \
    "deb $mirror $suite main" \
    "deb $mirror $suite-updates main" \
    "deb $security $suite-security main" >"$work/mmdebstrap.log" 2>&1 ||
    { tail -n 40 "$work/mmdebstrap.log" >&2; die "mmdebstrap failed (above: the end of its log)"; }
  date -u +%FT%TZ >"$base_tmp/.built"
  find "$cache" -maxdepth 1 -name 'base-*' -type d -exec rm -rf {} +
  mv "$base_tmp" "$base"
  base_tmp=
  log "base built in $(($(date +%s) - t0)) s"
fi

# --- 2. the appliance's root file system -------------------------------------
root="$work/root"
cp -a "$base" "$root"
rm -f "$root/.built"

root_uuid=$(cat /proc/sys/kernel/random/uuid)
root_partuuid=$(cat /proc/sys/kernel/random/uuid)
disk_guid=$(cat /proc/sys/kernel/random/uuid)

# No service starts inside the chroot.
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"

log "installing $(basename "$deb")"
cp "$deb" "$root/tmp/outpost.deb"
in_root dpkg -i /tmp/outpost.deb >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log" >&2; die "dpkg -i failed"; }
rm -f "$root/tmp/outpost.deb"

# First-boot units (image/firstboot): installed as vendor units, enabled.
units=()
if [ -d image/firstboot ]; then
  for f in image/firstboot/*; do
    [ -f "$f" ] || continue
    case "$f" in
      *.service | *.target | *.path | *.timer | *.socket)
        name=$(basename "$f")
        if [ -e "$root/usr/lib/systemd/system/$name" ] || [ -e "$root/lib/systemd/system/$name" ]; then
          log "firstboot: $name already comes with the package"
        else
          install -m 0644 "$f" "$root/usr/lib/systemd/system/$name"
        fi
        grep -q '^\[Install\]' "$f" && units+=("$name")
        ;;
    esac
  done
fi
[ ${#units[@]} -gt 0 ] || log "warning: no first-boot units in image/firstboot: the image boots with the package's defaults"
# Drop-ins for the package's units (outpost.service waits for the setup).
for d in image/firstboot/*.service.d; do
  [ -d "$d" ] || continue
  install -d -m 0755 "$root/etc/systemd/system/$(basename "$d")"
  install -m 0644 "$d"/*.conf "$root/etc/systemd/system/$(basename "$d")/"
done

# Identity and locale: the host name is set at first boot (seed or setup).
echo outpost >"$root/etc/hostname"
cat >"$root/etc/hosts" <<'EOF'
127.0.0.1	localhost
127.0.1.1	outpost
::1		localhost ip6-localhost ip6-loopback
ff02::1		ip6-allnodes
ff02::2		ip6-allrouters
EOF
echo 'LANG=C.UTF-8' >"$root/etc/locale.conf"
echo 'LANG=C.UTF-8' >"$root/etc/default/locale"
ln -sf /usr/share/zoneinfo/Etc/UTC "$root/etc/localtime"
echo Etc/UTC >"$root/etc/timezone"

cat >"$root/etc/fstab" <<EOF
# <file system>	<mount point>	<type>	<options>	<dump>	<pass>
UUID=$root_uuid	/	ext4	defaults,errors=remount-ro,x-systemd.growfs	0	1
EOF

# A bigger virtual disk: systemd-repart grows the root partition at boot and
# x-systemd.growfs (above) the file system.
mkdir -p "$root/usr/lib/repart.d"
cat >"$root/usr/lib/repart.d/50-outpost-root.conf" <<'EOF'
# Grow the root partition into free space at the end of the disk (a VM whose
# disk was made bigger). Nothing else is created or changed.
[Partition]
Type=root
EOF

# Network: DHCP on every Ethernet interface until first-boot setup says
# otherwise; systemd-networkd + systemd-resolved, no ifupdown.
mkdir -p "$root/etc/systemd/network"
cat >"$root/etc/systemd/network/90-outpost-dhcp.network" <<'EOF'
# Default: DHCP (IPv4) and router advertisements (IPv6) on every Ethernet
# interface. First-boot setup writes a lower-numbered file for a static address.
[Match]
Type=ether

[Network]
DHCP=yes
IPv6AcceptRA=yes

[DHCPv4]
UseDomains=yes
EOF
mkdir -p "$root/etc/systemd/system/systemd-networkd-wait-online.service.d"
cat >"$root/etc/systemd/system/systemd-networkd-wait-online.service.d/outpost.conf" <<'EOF'
# One configured interface is enough, and a VM without DHCP still boots on.
[Service]
ExecStart=
ExecStart=/lib/systemd/systemd-networkd-wait-online --any --timeout=30
EOF

# Journal: persistent, bounded; copied to the serial console (ttyS0) so a VM's
# serial log shows what failed.
mkdir -p "$root/etc/systemd/journald.conf.d"
cat >"$root/etc/systemd/journald.conf.d/outpost.conf" <<'EOF'
[Journal]
Storage=persistent
SystemMaxUse=256M
ForwardToConsole=yes
TTYPath=/dev/ttyS0
MaxLevelConsole=info
EOF

# Resolver: systemd-resolved without its stub listener, which would hold
# port 53 that the node's DNS server binds (dns.listen); resolv.conf lists the
# upstream servers. (outpost setup writes the same.)
mkdir -p "$root/etc/systemd/resolved.conf.d"
cat >"$root/etc/systemd/resolved.conf.d/50-outpost-image.conf" <<'EOF'
[Resolve]
DNSStubListener=no
EOF
ln -sfn ../run/systemd/resolve/resolv.conf "$root/etc/resolv.conf"

# SSH only when asked for (OUTPOST_IMAGE_EXTRA_PACKAGES=openssh-server): off
# by default, its host keys made at its first start, not baked in the image.
if [ -x "$root/usr/sbin/sshd" ]; then
  mkdir -p "$root/etc/systemd/system/ssh.service.d"
  printf '[Service]\nExecStartPre=/usr/bin/ssh-keygen -A\n' >"$root/etc/systemd/system/ssh.service.d/outpost-hostkeys.conf"
  in_root systemctl disable ssh.service >/dev/null 2>&1
fi

cat >"$root/etc/issue" <<'EOF'
Outpost appliance \n (\l) - web UI: https://\4/

EOF

# Units: network stack on; the root account locked; systemd-firstboot off
# (its prompts would hold the console: our own first-boot setup asks).
in_root systemctl enable systemd-networkd.service systemd-resolved.service systemd-timesyncd.service >/dev/null 2>&1
in_root systemctl disable apt-daily.timer apt-daily-upgrade.timer >/dev/null 2>&1 || true
in_root systemctl mask systemd-firstboot.service >/dev/null 2>&1
if [ ${#units[@]} -gt 0 ]; then
  in_root systemctl enable "${units[@]}" >/dev/null 2>&1
fi
in_root usermod --lock root
in_root update-initramfs -u -k all >"$work/initramfs.log" 2>&1 || { cat "$work/initramfs.log" >&2; die "update-initramfs failed"; }

# Boot menu, read by both GRUB images below from the root file system. The
# kernel and initrd are the /vmlinuz and /initrd.img links Debian keeps on the
# newest kernel, so a kernel update needs no GRUB update.
mkdir -p "$root/boot/grub"
cmdline="root=UUID=$root_uuid ro console=tty1 console=ttyS0,115200n8 quiet"
cat >"$root/boot/grub/grub.cfg" <<EOF
# Outpost appliance boot menu. Written by image/build.sh; GRUB itself is not
# installed in the system (the BIOS and UEFI loaders on the disk are fixed).
set default=0
set timeout=2
if serial --unit=0 --speed=115200; then
  terminal_input --append serial
  terminal_output --append serial
fi
menuentry "Outpost" {
  linux /vmlinuz $cmdline
  initrd /initrd.img
}
menuentry "Outpost (previous kernel)" {
  linux /vmlinuz.old $cmdline
  initrd /initrd.img.old
}
EOF

# Clean: empty machine-id (a new one at first boot), no apt lists, caches,
# logs or temporary files, no policy-rc.d.
rm -f "$root/usr/sbin/policy-rc.d"
: >"$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id" "$root/var/lib/systemd/random-seed"
rm -rf "$root/var/lib/apt/lists/"* "$root/var/cache/apt/"*.bin "$root/var/cache/apt/archives/"*.deb \
  "$root/var/cache/debconf/"*-old "$root/var/lib/dpkg/"*-old \
  "$root/tmp/"* "$root/var/tmp/"* "$root/etc/ssh/ssh_host_"* "$root/root/.bash_history"
find "$root/var/log" -type f -exec truncate -s 0 {} +
# shellcheck disable=SC2016 # a dpkg-query format
in_root dpkg-query -W -f='${Package}\t${Version}\n' >"bin/outpost-$version.packages"

# --- 3. the disk: GPT, BIOS boot + ESP + root --------------------------------
#   LBA 0        protective MBR, GRUB boot.img in its first 440 bytes
#   1 MiB  1 MiB BIOS boot partition: GRUB core.img (i386-pc)
#   2 MiB 126 MiB ESP (FAT32): \EFI\BOOT\BOOTX64.EFI (GRUB, x86_64-efi)
#   128 MiB ...  root (ext4), type "Linux root (x86-64)"
disk="$work/disk.raw"
truncate -s "${disk_gb}G" "$disk"
sfdisk --quiet --no-reread --no-tell-kernel "$disk" <<EOF
label: gpt
label-id: $disk_guid
unit: sectors
first-lba: 2048
start=2048, size=2048, type=21686148-6449-6E6F-744E-656564454649, name="bios-boot"
start=4096, size=258048, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="esp"
start=262144, type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709, uuid=$root_partuuid, name="root"
EOF
read -r root_start root_sectors < <(sfdisk --dump "$disk" | awk -F'[=,]' '/^.*3 : start=/ {gsub(/ /,""); print $2, $4}')
[ -n "${root_sectors:-}" ] || die "could not read the root partition from the partition table"

log "making the root file system ($((root_sectors / 2048)) MiB, $(du -sm "$root" | cut -f1) MiB used)"
mke2fs -q -F -t ext4 -L outpost-root -U "$root_uuid" -E root_owner=0:0,nodiscard \
  -d "$root" "$work/root.ext4" "$((root_sectors / 8))" >/dev/null
e2fsck -fn "$work/root.ext4" >"$work/fsck.log" 2>&1 || { cat "$work/fsck.log" >&2; die "the new file system does not check clean"; }
dd if="$work/root.ext4" of="$disk" bs=1M seek="$((root_start * 512))" oflag=seek_bytes conv=notrunc,sparse status=none
rm -f "$work/root.ext4"

# GRUB's first step, the same for BIOS and UEFI: find the root file system by
# UUID and read /boot/grub/grub.cfg from it. Every module it needs is built in.
cat >"$work/early.cfg" <<EOF
search --no-floppy --fs-uuid --set=root $root_uuid
set prefix=(\$root)/boot/grub
EOF
grub_modules="part_gpt part_msdos ext2 fat search search_fs_uuid normal configfile linux echo test
  serial terminal sleep minicmd reboot halt gzio cat ls"

# UEFI: a GRUB EFI image as the removable-media path \EFI\BOOT\BOOTX64.EFI
# (no NVRAM entry needed).
# shellcheck disable=SC2086 # a word list of modules
grub-mkimage -O x86_64-efi -o "$work/BOOTX64.EFI" -c "$work/early.cfg" -p /boot/grub \
  $grub_modules efi_gop efi_uga all_video video_fb
esp="$work/esp.fat"
mkfs.vfat -F 32 -s 1 -n OUTPOST-EFI -C "$esp" $((258048 / 2)) >/dev/null
mmd -i "$esp" ::/EFI ::/EFI/BOOT
mcopy -i "$esp" "$work/BOOTX64.EFI" ::/EFI/BOOT/BOOTX64.EFI
dd if="$esp" of="$disk" bs=1M seek=$((4096 * 512)) oflag=seek_bytes conv=notrunc status=none

# BIOS: GRUB's core.img in the BIOS boot partition (LBA 2048), boot.img in
# the MBR. This is what grub-install does on a block device, done here on the
# file: boot.img learns where core.img starts (offset 0x5c), its boot drive
# is the BIOS's (0x64 = 0xff) and the floppy check is skipped (0x66 = 2 NOPs);
# core.img's first sector (diskboot) learns where the rest of it starts
# (the block list at 0x1f4).
# shellcheck disable=SC2086
grub-mkimage -O i386-pc -o "$work/core.img" -c "$work/early.cfg" -p /boot/grub \
  biosdisk $grub_modules
core_size=$(stat -c %s "$work/core.img")
[ "$core_size" -le $((2048 * 512)) ] || die "core.img ($core_size bytes) does not fit the 1 MiB BIOS boot partition"
le64() { printf '%016x' "$1" | sed -E 's/(..)(..)(..)(..)(..)(..)(..)(..)/\\x\8\\x\7\\x\6\\x\5\\x\4\\x\3\\x\2\\x\1/'; }
cp /usr/lib/grub/i386-pc/boot.img "$work/boot.img"
# shellcheck disable=SC2059 # le64 prints \x escapes for printf
printf "$(le64 2048)" | dd of="$work/boot.img" bs=1 seek=$((0x5c)) conv=notrunc status=none
printf '\xff' | dd of="$work/boot.img" bs=1 seek=$((0x64)) conv=notrunc status=none
printf '\x90\x90' | dd of="$work/boot.img" bs=1 seek=$((0x66)) conv=notrunc status=none
# shellcheck disable=SC2059
printf "$(le64 2049)" | dd of="$work/core.img" bs=1 seek=$((0x1f4)) conv=notrunc status=none
dd if="$work/core.img" of="$disk" bs=512 seek=2048 conv=notrunc status=none
dd if="$work/boot.img" of="$disk" bs=440 count=1 conv=notrunc status=none
sfdisk --verify "$disk" >/dev/null || die "the partition table does not verify after writing the boot loaders"

# --- 4. outputs ------------------------------------------------------------------
name="outpost-$version"
log "writing bin/$name.qcow2"
qemu-img convert -f raw -O qcow2 -c -o compression_type=zlib "$disk" "$work/$name.qcow2"
qemu-img check -q "$work/$name.qcow2"

log "writing bin/$name.ova"
ova="$work/ova"
mkdir -p "$ova"
vmdk="$name-disk1.vmdk"
qemu-img convert -f raw -O vmdk -o subformat=streamOptimized,adapter_type=lsilogic,hwversion=4,toolsversion=2147483647 \
  "$disk" "$ova/$vmdk"
qemu-img info "$ova/$vmdk" | grep -q 'create type: streamOptimized' || die "the VMDK is not streamOptimized"
capacity=$(stat -c %s "$disk")
sed -e "s|@VERSION@|$version|g" \
    -e "s|@NAME@|$name|g" \
    -e "s|@VMDK@|$vmdk|g" \
    -e "s|@VMDK_SIZE@|$(stat -c %s "$ova/$vmdk")|g" \
    -e "s|@CAPACITY@|$capacity|g" \
    -e "s|@POPULATED@|$(qemu-img info --output=json "$disk" | sed -n 's/.*"actual-size": \([0-9]*\).*/\1/p')|g" \
    image/ovf/outpost.ovf.in >"$ova/$name.ovf"
if grep -q '@[A-Z_]*@' "$ova/$name.ovf"; then die "image/ovf/outpost.ovf.in has a placeholder build.sh does not fill"; fi
xmllint --noout "$ova/$name.ovf"
(cd "$ova" && for f in "$name.ovf" "$vmdk"; do
  printf 'SHA256(%s)= %s\n' "$f" "$(sha256sum "$f" | cut -d' ' -f1)"
done >"$name.mf")
# The .ovf first (the OVF specification requires it of an OVA; ESXi and
# ovftool check), then the manifest, then the disk.
tar --format=ustar --owner=0 --group=0 --numeric-owner --mode=0644 \
  -C "$ova" -cf "$work/$name.ova" "$name.ovf" "$name.mf" "$vmdk"

mv "$work/$name.qcow2" "bin/$name.qcow2"
mv "$work/$name.ova" "bin/$name.ova"
log "done in $(($(date +%s) - start)) s:"
ls -l "bin/$name.qcow2" "bin/$name.ova" >&2
log "virtual disk $disk_gb GiB; qcow2 $(du -m "bin/$name.qcow2" | cut -f1) MiB, ova $(du -m "bin/$name.ova" | cut -f1) MiB"
