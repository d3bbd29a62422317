// Package ui is the appliance's local web UI for people: sign-in (the
// snapshot's admins and the node's break-glass admin), server-side
// sessions, CSRF tokens, sign-in lockout, security headers and the live
// failover status page (Server-Sent Events). Pages are server-rendered
// html/template; the static files (CSS, our own JS, the vendored htmx when
// scripts/deps.sh has fetched it) are embedded. docs/ui.md describes it.
//
// It reads the node's status and the snapshot's admins through the funcs
// in Deps and never writes the store: a later change (an SDG override)
// goes through the cluster like every write. It never loads anything from
// another origin, never logs a password, and never has a default password.
package ui
