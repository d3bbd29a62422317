#!/usr/bin/env bash
# The outpost package's install, upgrade and removal test (docs/upgrade.md,
# "Testing the package"). Run it as root on Debian 12: `make deb-test`.
#
# It builds three versions of the package (A < B < C) from bin/outpost and
# installs them into a Debian 12 minbase tree made by debootstrap (cached for
# a week under ${XDG_CACHE_HOME:-~/.cache}/outpost/deb-test), twice:
#   1. in a plain chroot, with no systemd running, as when the VM image is
#      built: dependencies resolved by apt, files, user, units (systemd-analyze
#      verify and security), `outpost migrate --check`; upgrade A -> B; an
#      upgrade to C refused because the store is newer than C knows, the old
#      binary still selected, then finished with `dpkg --configure -a`; the
#      same for a damaged store on a reinstall; remove and purge, comparing
#      the whole tree's file list with the one before;
#   2. booted with systemd as PID 1 (systemd-nspawn, private network), when
#      systemd-nspawn is there or installable: the service starts under its
#      hardening, becomes ready and keeps a snapshot across an upgrade, which
#      restarts it on the new version; a refused upgrade leaves the same
#      process running the old version; removal stops it and its firewall.
# Prints PASS or FAIL for every check and a summary; exits non-zero on any
# failure.
#
# Environment: OUTPOST_DEB_TEST_CACHE (the cache directory),
# OUTPOST_DEB_TEST_MIRROR (the Debian mirror), OUTPOST_DEB_TEST_BOOT=0 (skip
# part 2).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
started=$(date +%s)
suite=bookworm
mirror=${OUTPOST_DEB_TEST_MIRROR:-http://deb.debian.org/debian}
cache=${OUTPOST_DEB_TEST_CACHE:-${XDG_CACHE_HOME:-${HOME:?HOME is not set}/.cache}/outpost/deb-test}
cache_days=7
config=/etc/outpost/outpost.yaml
store=/var/lib/outpost/outpost.db

die() {
	echo "image/deb/test.sh: $*" >&2
	exit 1
}

[[ $(id -u) == 0 ]] || die "run it as root: debootstrap, chroot, mounts and systemd-nspawn need it"

# need CMD PACKAGE installs PACKAGE from Debian when CMD is missing.
need() {
	command -v "$1" >/dev/null && return 0
	echo "installing $2 (for $1)"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null 2>&1
	command -v "$1" >/dev/null
}
need debootstrap debootstrap || die "debootstrap is missing and could not be installed"
need sqlite3 sqlite3 || die "sqlite3 is missing and could not be installed"

work=$(mktemp -d /var/tmp/outpost-deb-test.XXXXXX)
R=$work/root
log=$work/step.log
nspawn_pid=""
box=""

stop_box() {
	[[ -n $nspawn_pid ]] || return 0
	kill -TERM "$nspawn_pid" 2>/dev/null || true
	for _ in $(seq 1 30); do
		kill -0 "$nspawn_pid" 2>/dev/null || break
		sleep 1
	done
	if kill -0 "$nspawn_pid" 2>/dev/null; then
		# The container's init: killing it ends everything in the container.
		[[ -z $box ]] || kill -KILL "$box" 2>/dev/null || true
	fi
	wait "$nspawn_pid" 2>/dev/null || true
	nspawn_pid="" box=""
}

cleanup() {
	stop_box
	if mountpoint -q "$R/proc" 2>/dev/null; then
		umount "$R/proc" || umount -l "$R/proc"
	fi
	if findmnt -rn -o TARGET | grep -q "^$work"; then
		echo "image/deb/test.sh: leaving $work: something is still mounted under it" >&2
		return
	fi
	rm -rf "$work"
}
trap cleanup EXIT

# --- checks and the summary -------------------------------------------------

passes=0
skips=0
failures=()

pass() {
	echo "  PASS  $1"
	passes=$((passes + 1))
}

fail() {
	echo "  FAIL  $1"
	failures+=("$1")
	if [[ -s $log ]]; then
		tail -n 25 "$log" | sed 's/^/        | /'
	fi
}

skip() {
	echo "  SKIP  $1"
	skips=$((skips + 1))
}

# check NAME CMD...: CMD succeeds.
check() {
	local name=$1
	shift
	if "$@" >"$log" 2>&1; then pass "$name"; else fail "$name"; fi
}

# must NAME CMD...: a step the rest depends on; stops the test if it fails.
must() {
	local name=$1
	shift
	if "$@" >"$log" 2>&1; then
		pass "$name"
	else
		fail "$name"
		summary
		exit 1
	fi
}

# refused NAME PATTERN CMD...: CMD fails and its output matches PATTERN.
refused() {
	local name=$1 pattern=$2
	shift 2
	if "$@" >"$log" 2>&1; then
		fail "$name (it succeeded)"
	elif grep -Eq -- "$pattern" "$log"; then
		pass "$name"
	else
		fail "$name (no \"$pattern\" in its output)"
	fi
}

summary() {
	local took=$(($(date +%s) - started))
	echo
	if ((${#failures[@]} == 0)); then
		echo "PASS: image/deb/test.sh: $passes checks passed, $skips skipped, in ${took}s"
	else
		echo "FAIL: image/deb/test.sh: ${#failures[@]} of $((passes + ${#failures[@]})) checks failed (${took}s):"
		printf '  - %s\n' "${failures[@]}"
	fi
}

phase() {
	echo
	echo "== $* ($(($(date +%s) - started))s)"
}

# --- running things in the tree ---------------------------------------------

# inside CMD... runs CMD in the tree: chrooted (part 1) or in the booted
# container's namespaces (part 2), with a clean environment.
inside() {
	local envs=(/usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
		HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive)
	if [[ -n $box ]]; then
		nsenter -t "$box" -a "${envs[@]}" "$@"
	else
		chroot "$R" "${envs[@]}" "$@"
	fi
}

apt_install() { inside apt-get install -y -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@"; }

# link_is VERSION-FILE: /usr/bin/outpost points at that file under
# /usr/lib/outpost, which runs.
link_is() {
	local got
	got=$(inside readlink /usr/bin/outpost)
	echo "/usr/bin/outpost -> $got"
	[[ $got == "/usr/lib/outpost/$1" ]] && inside outpost help >/dev/null
}

status_is() {
	local got
	# shellcheck disable=SC2016 # dpkg-query's format, not the shell's
	got=$(inside dpkg-query -W -f='${db:Status-Abbrev}${Version}' outpost)
	echo "dpkg: $got"
	[[ $got == "$1" ]]
}

# store_sql SQL: changes the store from the host, as a careless admin or a
# newer version would.
store_sql() { sqlite3 -cmd '.timeout 5000' "$R$store" "$1"; }

save_store() { cp -a "$R$store" "$work/store.good"; }
restore_store() {
	cp -a "$work/store.good" "$R$store"
	rm -f "$R$store-wal" "$R$store-shm"
}

# file_list: every path of the tree with its type, but for what changes
# whatever is installed (package manager state, logs, caches, pseudo file
# systems, the test's own files in /root) and the backup copies user tools
# make of /etc/passwd and friends.
file_list() {
	find "$R" -mindepth 1 \( -path "$R/proc" -o -path "$R/sys" -o -path "$R/dev" -o -path "$R/run" \
		-o -path "$R/tmp" -o -path "$R/var/tmp" -o -path "$R/root" -o -path "$R/var/log" \
		-o -path "$R/var/cache/apt" -o -path "$R/var/cache/debconf" -o -path "$R/var/cache/ldconfig" \
		-o -path "$R/var/lib/apt" -o -path "$R/var/lib/dpkg" -o -path "$R/etc/ld.so.cache" \
		-o -path "$R/etc/.pwd.lock" -o -path "$R/etc/passwd-" -o -path "$R/etc/group-" \
		-o -path "$R/etc/shadow-" -o -path "$R/etc/gshadow-" \) -prune -o -printf '%P %y\n' | LC_ALL=C sort
}

# After `apt-get remove`: the configuration, the data and the units'
# enablement (for a reinstall) stay; nothing else.
kept_after_remove='^(etc/outpost|etc/outpost/outpost\.(yaml|nft)|var/lib/outpost(/.*)?|etc/systemd/system/(multi-user|sysinit)\.target\.wants/outpost(-firewall)?\.service|var/lib/systemd/deb-systemd-helper-enabled(/.*)?) '

same_files_as_baseline() {
	file_list >"$work/files.now"
	diff "$work/files.baseline" "$work/files.now"
}

only_kept_files_remain() {
	file_list >"$work/files.now"
	local gone extra
	gone=$(comm -23 "$work/files.baseline" "$work/files.now")
	extra=$(comm -13 "$work/files.baseline" "$work/files.now" | grep -Ev "$kept_after_remove" || true)
	[[ -z $gone ]] || echo "removed from the baseline: $gone"
	[[ -z $extra ]] || echo "left behind: $extra"
	[[ -z $gone && -z $extra ]]
}

no_package_paths() {
	local p left=0
	for p in /usr/bin/outpost /usr/lib/outpost /etc/outpost /var/lib/outpost /lib/systemd/system/outpost.service \
		/lib/systemd/system/outpost-firewall.service /usr/lib/sysusers.d/outpost.conf /usr/lib/sysctl.d/60-outpost.conf \
		/usr/share/doc/outpost /etc/systemd/system/multi-user.target.wants/outpost.service \
		/etc/systemd/system/sysinit.target.wants/outpost-firewall.service; do
		if [[ -e $R$p || -L $R$p ]]; then
			echo "left: $p"
			left=1
		fi
	done
	if inside getent passwd outpost || inside getent group outpost; then
		echo "left: the user or group outpost"
		left=1
	fi
	((left == 0))
}

# shellcheck disable=SC2016 # dpkg-query's formats, not the shell's
deps_installed() {
	local bad
	inside dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' libc6 systemd nftables systemd-timesyncd
	bad=$(inside dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' libc6 systemd nftables systemd-timesyncd | grep -v '^ii ' || true)
	[[ -z $bad ]]
}

# shellcheck disable=SC2016 # dpkg-query's format, not the shell's
conffiles_registered() {
	local n
	n=$(inside dpkg-query -W -f='${Conffiles}\n' outpost | grep -c '/etc/outpost/outpost\.\(yaml\|nft\) ')
	echo "conffiles: $n"
	[[ $n == 2 ]]
}

system_user() {
	local line uid home shell
	line=$(inside getent passwd outpost)
	echo "$line"
	IFS=: read -r _ _ uid _ _ home shell <<<"$line"
	((uid < 1000)) && [[ $home == /var/lib/outpost && $shell == */nologin ]]
}

data_dir_owned() {
	local got
	got=$(inside stat -c '%U:%G %a' /var/lib/outpost)
	echo "/var/lib/outpost: $got"
	[[ $got == "outpost:outpost 750" ]]
}

nothing_to_migrate() {
	inside outpost migrate --check --config "$config" | tee /dev/stderr | grep -q 'nothing to migrate'
}

# damaged_check_fails: scribbled pages make `migrate --check` fail with
# one line; the store is put back afterwards.
damaged_check_fails() {
	local out rc=0
	cp -a "$R$store" "$work/store.tmp"
	head -c 8192 /dev/urandom | dd of="$R$store" bs=4096 seek=1 conv=notrunc status=none
	out=$(inside outpost migrate --check --config "$config" 2>&1) || rc=$?
	cp -a "$work/store.tmp" "$R$store"
	echo "exit $rc: $out"
	[[ $rc == 1 && $out == "outpost: check "* && $(wc -l <<<"$out") == 1 ]] &&
		grep -Eq 'damaged|malformed|not a database' <<<"$out"
}

old_binary_gone() {
	! inside test -e "/usr/lib/outpost/$1" && ! inside test -e /usr/lib/outpost/kept
}

old_gone_new_unpacked() {
	! inside test -e "/usr/lib/outpost/$1" && inside test -x "/usr/lib/outpost/$2"
}

configure_finishes() {
	inside dpkg --configure -a && link_is "$1" && ! inside test -e /usr/lib/outpost/kept
}

removed_keeping_config() {
	! inside test -e /usr/bin/outpost && ! inside test -L /usr/bin/outpost && ! inside test -e /usr/lib/outpost &&
		inside test -f "$config" -a -f "$store"
}

# --- the packages -------------------------------------------------------------

phase "building packages A < B < C from bin/outpost"
[[ -x $root/bin/outpost ]] || die "no bin/outpost: run make build (make deb-test does)"
export OUTPOST_DEB_OUTDIR=$work/debs OUTPOST_DEB_COMPRESSION=${OUTPOST_DEB_COMPRESSION:-gzip}
deb_a=$("$here/build.sh" | tail -n 1)
ver_a=$(dpkg-deb -f "$deb_a" Version)
ver_b="$ver_a+upgrade1"
ver_c="$ver_a+upgrade2"
deb_b=$(OUTPOST_DEB_VERSION=$ver_b "$here/build.sh" | tail -n 1)
deb_c=$(OUTPOST_DEB_VERSION=$ver_c "$here/build.sh" | tail -n 1)
if ! dpkg --compare-versions "$ver_b" gt "$ver_a" || ! dpkg --compare-versions "$ver_c" gt "$ver_b"; then
	die "versions do not increase: $ver_a, $ver_b, $ver_c"
fi
file_a=outpost-${ver_a#*:} file_b=outpost-${ver_b#*:} file_c=outpost-${ver_c#*:}
echo "  A $ver_a, B $ver_b, C $ver_c"
snapshot=$work/snapshot.json
if [[ -x $root/bin/outpost-cloud ]]; then
	"$root/bin/outpost-cloud" gen --users 5 --sdgs 1 --trunks 1 >"$snapshot"
fi

# --- the tree -------------------------------------------------------------------

phase "a $suite minbase tree"
mkdir -p "$cache/archives"
tarball=$cache/$suite-minbase.tar
if [[ ! -f $tarball || -n $(find "$tarball" -mtime +"$cache_days") ]]; then
	echo "  debootstrap --variant=minbase $suite (cached for $cache_days days in $cache)"
	if ! debootstrap --variant=minbase "$suite" "$work/bootstrap" "$mirror" >"$work/debootstrap.log" 2>&1; then
		tail -n 20 "$work/debootstrap.log" >&2
		die "debootstrap failed"
	fi
	rm -f "$work/bootstrap/var/cache/apt/archives/"*.deb
	tar -C "$work/bootstrap" -cf "$tarball.tmp" .
	mv "$tarball.tmp" "$tarball"
	rm -rf "$work/bootstrap"
fi
mkdir "$R"
tar -C "$R" -xf "$tarball"
cp /etc/resolv.conf "$R/etc/resolv.conf"
mkdir -p "$R/root/debs"
cp "$deb_a" "$deb_b" "$deb_c" "$R/root/debs/"
a=/root/debs/$(basename "$deb_a") b=/root/debs/$(basename "$deb_b") c=/root/debs/$(basename "$deb_c")
[[ ! -f $snapshot ]] || cp "$snapshot" "$R/root/snapshot.json"
# systemd's own postinst (a dependency) wants /proc.
mount -t proc proc "$R/proc"
# Downloaded dependencies are kept for the next run.
find "$cache/archives" -name '*.deb' -exec cp -t "$R/var/cache/apt/archives/" {} +
echo "  in $R"

# --- part 1: chroot ---------------------------------------------------------------

phase "1. chroot, no systemd running (as when the VM image is built)"
must "A installs on a bare minbase, apt resolving its dependencies" apt_install "$a"
cp -n "$R/var/cache/apt/archives/"*.deb "$cache/archives/" 2>/dev/null || true
check "the dependencies are installed: libc6, systemd, nftables, systemd-timesyncd" deps_installed
must "purge A" inside apt-get purge -y outpost
check "after the purge nothing of the package is left" no_package_paths
file_list >"$work/files.baseline"

must "install A again (the baseline: its dependencies stay)" apt_install "$a"
check "files: the versioned binary, units, configuration, sysusers, sysctl, docs" inside test \
	-x "/usr/lib/outpost/$file_a" -a -f /lib/systemd/system/outpost.service -a -f /lib/systemd/system/outpost-firewall.service \
	-a -f "$config" -a -f /etc/outpost/outpost.nft -a -f /usr/lib/sysusers.d/outpost.conf \
	-a -f /usr/lib/sysctl.d/60-outpost.conf -a -f /usr/share/doc/outpost/upgrade.md
check "/usr/bin/outpost -> A, and it runs (outpost help)" link_is "$file_a"
check "A is installed and configured" status_is "ii $ver_a"
check "the conffiles are registered" conffiles_registered
check "user outpost: a system user, home /var/lib/outpost, no login shell" system_user
check "/var/lib/outpost belongs to outpost, mode 750" data_dir_owned
check "both units enabled" inside test -L /etc/systemd/system/multi-user.target.wants/outpost.service \
	-a -L /etc/systemd/system/sysinit.target.wants/outpost-firewall.service
check "systemd-analyze verify: both units" inside systemd-analyze verify /lib/systemd/system/outpost.service /lib/systemd/system/outpost-firewall.service
check "systemd-analyze security --offline: exposure at most 2.0" inside systemd-analyze security --offline=true --threshold=20 /lib/systemd/system/outpost.service
grep -o 'Overall exposure level.*' "$log" | sed 's/^/        /' || true
check "outpost migrate --check: no store yet, nothing to migrate" nothing_to_migrate

# A store of this version: an empty file migrated in place, as the service's user.
check "a store made by outpost migrate, as the user outpost" inside sh -c \
	"install -o outpost -g outpost -m 600 /dev/null $store && cd /var/lib/outpost && setpriv --reuid=outpost --regid=outpost --clear-groups -- outpost migrate --config $config"
check "outpost migrate --check on it: ok" inside outpost migrate --check --config "$config"
check "outpost migrate --check on a damaged store fails, in one line" damaged_check_fails

must "upgrade A -> B" apt_install "$b"
grep -E 'ok$|nothing to migrate' "$log" | sed 's/^/        /' || true
check "/usr/bin/outpost -> B" link_is "$file_b"
check "A's binary is gone and nothing is kept" old_binary_gone "$file_a"
check "B is installed and configured" status_is "ii $ver_b"

save_store
store_sql "INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, '9999_future.sql', '2099-01-01T00:00:00Z')"
refused "upgrade B -> C refused: the store is newer than C knows" 'newer than this binary supports.*|stays on' apt_install "$c"
grep -E '^outpost: ' "$log" | cut -c1-220 | sed 's/^/        /' || true
check "/usr/bin/outpost stays on B, kept: it runs" link_is "kept/$file_b"
check "B's packaged binary is gone (dpkg removed it), C's is unpacked" old_gone_new_unpacked "$file_b" "$file_c"
check "dpkg: C half-configured (iF)" status_is "iF $ver_c"
restore_store
check "after the store is fixed, dpkg --configure -a finishes C: /usr/bin/outpost -> C, nothing kept" configure_finishes "$file_c"
check "C is installed and configured" status_is "ii $ver_c"

head -c 4096 /dev/urandom >"$R$store"
refused "reinstalling C on a damaged store is refused" 'damaged|not a SQLite database' apt_install --reinstall "$c"
check "/usr/bin/outpost on the kept copy of C, which runs" link_is "kept/$file_c"
restore_store
check "dpkg --configure -a finishes the reinstall" configure_finishes "$file_c"

must "apt-get remove outpost" inside apt-get remove -y outpost
check "removed: /usr/bin/outpost and /usr/lib/outpost; kept: configuration and data" removed_keeping_config
check "removed: nothing else is left (file list against the baseline)" only_kept_files_remain
must "apt-get purge outpost" inside apt-get purge -y outpost
check "purged: the file list is the baseline's" same_files_as_baseline
check "purged: no user or group outpost, nothing of the package" no_package_paths
umount "$R/proc"

# --- part 2: booted ---------------------------------------------------------------

phase "2. booted: systemd as PID 1 (systemd-nspawn, private network)"
if [[ ${OUTPOST_DEB_TEST_BOOT:-1} == 0 ]]; then
	skip "part 2 (OUTPOST_DEB_TEST_BOOT=0)"
elif ! need systemd-nspawn systemd-container; then
	skip "part 2: systemd-nspawn is missing (apt-get install systemd-container)"
else
	# Private network: the node's ports and the firewall stay in the container.
	systemd-nspawn --quiet --register=no --keep-unit --private-network --console=passive \
		--machine="outpost-deb-test-$$" -D "$R" -b </dev/null >"$work/nspawn.log" 2>&1 &
	nspawn_pid=$!
	for _ in $(seq 1 50); do
		box=$(ps -o pid= --ppid "$nspawn_pid" | head -n 1 | tr -d ' ' || true)
		[[ -z $box ]] || break
		sleep 0.2
	done
	booted() {
		local state=""
		for _ in $(seq 1 180); do
			state=$(nsenter -t "$box" -a systemctl is-system-running 2>/dev/null) || true
			case $state in
			running | degraded)
				echo "system: $state"
				return 0
				;;
			esac
			sleep 0.5
		done
		echo "system: ${state:-no answer}"
		return 1
	}
	must "the container boots" booted

	unit_prop() { inside systemctl show -p "$1" --value outpost.service; }
	ready() {
		for _ in $(seq 1 60); do
			if inside outpost status --config "$config" 2>/dev/null | grep -q '^ready     yes'; then
				inside outpost status --config "$config"
				return 0
			fi
			sleep 0.5
		done
		inside systemctl status --no-pager outpost.service || true
		inside journalctl -u outpost.service --no-pager -n 20 || true
		return 1
	}
	revision_is() {
		local got
		got=$(inside outpost status --json --config "$config" | grep -o '"revision": [0-9]*' | grep -o '[0-9]*$')
		echo "revision $got"
		[[ $got == "$1" ]]
	}
	# runs_on FILE: the service's main process runs /usr/lib/outpost/FILE.
	runs_on() {
		local pid exe
		pid=$(unit_prop MainPID)
		exe=$(inside readlink "/proc/$pid/exe")
		echo "MainPID $pid runs $exe"
		[[ $pid != 0 && $exe == "/usr/lib/outpost/$1"* ]]
	}
	# watchdog_and_status: the watchdog is armed and the node's STATUS=
	# line (sent every few seconds) reports it as the leader.
	watchdog_and_status() {
		local wd st
		for _ in $(seq 1 30); do
			wd=$(unit_prop WatchdogUSec) st=$(unit_prop StatusText)
			[[ $wd == 30s && $st == *raft=Leader* ]] && break
			sleep 0.5
		done
		echo "WatchdogUSec=$wd StatusText=$st"
		[[ $wd == 30s && $st == *raft=Leader* ]]
	}
	restarted_on() { # restarted_on OLD-PID FILE
		[[ $(unit_prop MainPID) != "$1" ]] && runs_on "$2"
	}
	left_alone() { # left_alone PID FILE
		[[ $(unit_prop MainPID) == "$1" && $(unit_prop ActiveState) == active ]] && runs_on "$2"
	}
	configure_restarts_on() {
		inside dpkg --configure -a && runs_on "$1"
	}
	stopped_and_unfirewalled() {
		local state
		state=$(unit_prop ActiveState)
		echo "outpost.service: $state"
		[[ $state != active ]] && ! inside nft list table inet outpost
	}

	must "install A with systemd running" apt_install "$a"
	check "outpost.service active under its hardening, and ready" ready
	check "the watchdog is armed (30 s) and the node reports its status" watchdog_and_status
	check "the firewall table is loaded" inside nft list table inet outpost
	check "systemd-timesyncd is enabled" inside systemctl is-enabled systemd-timesyncd.service
	want_rev=""
	if [[ -f $snapshot ]] && want_rev=$(inside outpost apply --config "$config" /root/snapshot.json 2>"$log"); then
		pass "a snapshot applied: revision $want_rev"
	else
		skip "applying a snapshot (no bin/outpost-cloud to make one, or it failed)"
		want_rev=""
	fi

	pid_a=$(unit_prop MainPID)
	must "upgrade A -> B: the new version checks the store, then restarts the node" apt_install "$b"
	check "restarted on B (a new main process)" restarted_on "$pid_a" "$file_b"
	check "ready again: leader of its cluster" ready
	if [[ -n $want_rev ]]; then
		check "the snapshot survived the upgrade (revision $want_rev)" revision_is "$want_rev"
	fi

	pid_b=$(unit_prop MainPID)
	store_sql "INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, '9999_future.sql', '2099-01-01T00:00:00Z')"
	refused "upgrade B -> C refused: the store is newer than C knows" 'newer than this binary supports' apt_install "$c"
	check "the node was left alone: the same process, still B, still active" left_alone "$pid_b" "$file_b"
	check "/usr/bin/outpost stays on B (kept)" link_is "kept/$file_b"
	store_sql "DELETE FROM schema_migrations WHERE version = 9999"
	check "after the fix, dpkg --configure -a restarts the node on C" configure_restarts_on "$file_c"
	check "ready on C" ready
	if [[ -n $want_rev ]]; then
		check "the snapshot is still there (revision $want_rev)" revision_is "$want_rev"
	fi

	must "apt-get remove outpost" inside apt-get remove -y outpost
	check "removed: the service stopped, the firewall table gone" stopped_and_unfirewalled
	must "apt-get purge outpost" inside apt-get purge -y outpost
	check "purged: nothing of the package, no user" no_package_paths
	stop_box
fi

summary
((${#failures[@]} == 0))
