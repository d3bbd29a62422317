// Package account owns the account's desired state as the cloud publishes it:
// the snapshot model, its strict decoding (Decode), and its validation
// (Validate, which lists every problem with its JSON path). It also computes
// digest HA1s and generates synthetic, valid accounts of any size (Generate)
// for tests, benchmarks and the reference cloud.
//
// It is pure: no I/O beyond the reader it is handed, no clock, no mutable
// globals. It must never depend on the appliance's packages; the store, the
// cluster, the web API and the reference cloud all read snapshots through it.
//
// The rules live in files named for what they check: rules.go (the walk,
// ids, sites, users, sdgs, numbers), routes.go, loops.go (route loops and
// SDG depth), outbound.go (trunks, call-out), access.go (admins, embed
// origins), prompts.go (custom prompts), syntax.go (single-value formats).
package account
