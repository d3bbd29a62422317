// Package web is the node's HTTP face: health and readiness probes,
// Prometheus metrics, the REST API (status, snapshot apply, cluster
// membership), the web UI for people (package ui, mounted here: sign-in,
// sessions, the live status page) and, in later parts, the embeddable call
// widget. Writes it cannot make itself (it is not the Raft leader) are
// forwarded to the leader's HTTP address whole. It never writes the store:
// every change goes through the cluster, every read through store.Reader.
// Client is the same API seen from the other side, for the CLI and for nodes
// talking to each other.
package web
