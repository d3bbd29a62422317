// Package setup owns the appliance's first-boot setup (`outpost setup`):
// the settings an admin gives once (admin password, host name, network,
// DNS, NTP, site, cloud pairing, cluster join), their validation, the
// console interview that asks for them, the unattended readers (cloud-init
// NoCloud seed data and the OVF environment of an OVA's vApp properties),
// rendering them into the files of a Debian system (the node configuration,
// systemd-networkd, timesyncd, resolver, host name), writing those files
// atomically under a root prefix, and the commands that apply them.
//
// Everything is validated before anything is written: bad input is refused
// with a message naming the key (unattended) or re-asked (console), and
// nothing is written. Commands run only through an injected Runner, so tests
// render into a temporary root and check the plan without touching the
// machine. The package never starts the node itself, never opens sockets
// and never talks to the cloud: pairing and the break-glass admin's file
// are functions the caller injects (the CLI's `outpost pair` path and
// appliance/web/ui's writer), so their formats live in one place.
package setup
