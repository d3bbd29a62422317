// Package deb holds the appliance's Debian package: the files build.sh puts
// in it (the systemd units, the shipped configuration, the nftables
// firewall, the maintainer scripts in debian/) and test.sh, which installs,
// upgrades and removes it in a chroot. Its only Go is this file and a test
// that keeps those files consistent with each other and with the config
// package: the firewall opens exactly the shipped configuration's ports, the
// configuration validates, the unit runs what the package installs.
//
// It must never hold code the appliance runs: the binary is
// appliance/cmd/outpost. Design and procedures: docs/upgrade.md.
package deb
