#!/usr/bin/env bash
# Builds the appliance's Debian package, bin/outpost_<version>_<arch>.deb,
# from bin/outpost (`make deb` builds it first; built here when missing).
# Layout, scripts and upgrade design: docs/upgrade.md.
#
# Environment:
#   OUTPOST_DEB_VERSION  the package version (default: from `git describe`)
#   OUTPOST_DEB_OUTDIR   where the .deb goes (default: <repo>/bin)
#   OUTPOST_DEB_BINARY   the outpost binary to package (default: <repo>/bin/outpost)
#   OUTPOST_DEB_COMPRESSION  xz (default), gzip or zstd: the test builds with gzip, faster
# Prints the path of the package it built on its last line.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
outdir=${OUTPOST_DEB_OUTDIR:-$root/bin}
binary=${OUTPOST_DEB_BINARY:-$root/bin/outpost}

die() {
	echo "image/deb/build.sh: $*" >&2
	exit 1
}

# debian_version maps `git describe --tags --always --dirty` to a Debian
# version: v1.2.3 -> 1.2.3; v1.2.3-rc1 -> 1.2.3~rc1; 4 commits after it ->
# 1.2.3+4.g<sha>; no tag -> 0.0.0+<commit count>.g<sha>; a dirty tree adds
# .dirty. The commit count keeps untagged builds of one branch in order.
debian_version() {
	local desc tag count sha dirty="" v
	desc=$(git -C "$root" describe --tags --always --dirty 2>/dev/null) || {
		echo "0.0.0+unknown"
		return
	}
	if [[ $desc == *-dirty ]]; then
		dirty=.dirty
		desc=${desc%-dirty}
	fi
	if [[ $desc =~ ^(.*)-([0-9]+)-g([0-9a-f]+)$ ]]; then
		tag=${BASH_REMATCH[1]} count=${BASH_REMATCH[2]} sha=${BASH_REMATCH[3]}
	elif [[ $desc =~ ^[0-9a-f]+$ ]]; then
		tag="" sha=$desc
		count=$(git -C "$root" rev-list --count HEAD 2>/dev/null || echo 0)
	else
		tag=$desc count="" sha=""
	fi
	if [[ -z $tag ]]; then
		v="0.0.0+$count.g$sha"
	else
		tag=${tag#v}
		[[ $tag =~ ^[0-9] ]] || tag="0.0.0+$tag"
		v=${tag//-/\~}
		v=${v//_/.}
		[[ -z $count ]] || v="$v+$count.g$sha"
	fi
	if [[ -n $dirty ]]; then
		if [[ $v == *+* ]]; then v="$v$dirty"; else v="$v+dirty"; fi
	fi
	echo "$v"
}

version=${OUTPOST_DEB_VERSION:-$(debian_version)}
# Upstream version (with an optional epoch and Debian revision) as dpkg
# accepts it; the binary's file name and the .deb's leave the epoch out.
[[ $version =~ ^([0-9]+:)?[0-9][A-Za-z0-9.+~]*(-[A-Za-z0-9.+~]+)?$ ]] ||
	die "version \"$version\" is not a Debian version (e.g. 1.2.3 or 1.2.3+4.gabcdef0)"
fileversion=${version#*:}

command -v dpkg-deb >/dev/null || die "dpkg-deb is missing: this builds on Debian (apt-get install dpkg)"
arch=$(dpkg --print-architecture)

if [[ ! -x $binary ]]; then
	[[ -z ${OUTPOST_DEB_BINARY:-} ]] || die "$binary is not an executable"
	echo "building $binary" >&2
	(cd "$root" && go build -o "$binary" ./appliance/cmd/outpost)
fi

# libc6 (and whatever else cgo linked) from the binary itself, with
# dpkg-shlibdeps (dpkg-dev) when it is there or can be installed.
shlibs() {
	if ! command -v dpkg-shlibdeps >/dev/null && [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
		echo "installing dpkg-dev for dpkg-shlibdeps" >&2
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dpkg-dev >/dev/null ||
			echo "could not install dpkg-dev" >&2
	fi
	if command -v dpkg-shlibdeps >/dev/null; then
		local dir out
		dir=$(mktemp -d)
		mkdir "$dir/debian"
		printf 'Source: outpost\n\nPackage: outpost\nArchitecture: any\n' >"$dir/debian/control"
		if out=$(cd "$dir" && dpkg-shlibdeps -O -e"$binary" 2>/dev/null); then
			rm -rf "$dir"
			out=${out#shlibs:Depends=}
			[[ -n $out ]] && {
				echo "$out"
				return
			}
		fi
		rm -rf "$dir"
	fi
	echo "dpkg-shlibdeps unavailable: using a hand-written libc6 dependency" >&2
	echo "libc6 (>= 2.34)"
}

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
pkg=$stage/pkg

install -d "$pkg/DEBIAN" "$pkg/usr/lib/outpost" "$pkg/lib/systemd/system" \
	"$pkg/usr/lib/sysusers.d" "$pkg/usr/lib/sysctl.d" "$pkg/etc/outpost" "$pkg/usr/share/doc/outpost"
install -m 0755 "$binary" "$pkg/usr/lib/outpost/outpost-$fileversion"
install -m 0644 "$here/outpost.service" "$here/outpost-firewall.service" "$pkg/lib/systemd/system/"
install -m 0644 "$here/sysusers.conf" "$pkg/usr/lib/sysusers.d/outpost.conf"
install -m 0644 "$here/sysctl.conf" "$pkg/usr/lib/sysctl.d/60-outpost.conf"
install -m 0644 "$here/outpost.yaml" "$here/outpost.nft" "$pkg/etc/outpost/"
install -m 0644 "$root/docs/upgrade.md" "$root/docs/configuration.md" "$pkg/usr/share/doc/outpost/"

for script in preinst postinst prerm postrm; do
	sed "s/@VERSION@/$fileversion/g" "$here/debian/$script" >"$pkg/DEBIAN/$script"
	chmod 0755 "$pkg/DEBIAN/$script"
done
printf '%s\n' /etc/outpost/outpost.yaml /etc/outpost/outpost.nft >"$pkg/DEBIAN/conffiles"
(cd "$pkg" && find . -path ./DEBIAN -prune -o -path ./etc -prune -o -type f -printf '%P\0' |
	sort -z | xargs -0 md5sum) >"$pkg/DEBIAN/md5sums"

cat >"$pkg/DEBIAN/control" <<EOF
Package: outpost
Version: $version
Architecture: $arch
Maintainer: Outpost developers <outpost@outpost-voice.invalid>
Installed-Size: $(du -sk --exclude=DEBIAN "$pkg" | cut -f1)
Depends: $(shlibs), systemd, nftables, systemd-timesyncd | time-daemon, util-linux, passwd
Section: net
Priority: optional
Description: Outpost edge survivability appliance
 Keeps a site's desk phones calling when the cloud phone system is
 unreachable: a SIP registrar and B2BUA clustered with Raft, with local
 DNS, trunks to on-premises SBCs and a web UI. Installs the outpost
 service (hardened systemd unit, user outpost, data in /var/lib/outpost)
 and its nftables firewall. An upgrade checks that the new version can
 migrate the store before switching to it.
EOF

mkdir -p "$outdir"
deb="$outdir/outpost_${fileversion}_${arch}.deb"
dpkg-deb --root-owner-group "-Z${OUTPOST_DEB_COMPRESSION:-xz}" --build "$pkg" "$deb" >/dev/null
echo "$deb"
