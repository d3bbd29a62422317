// Package cloudsync is the appliance's side of the sync protocol with the
// cloud control plane (docs/sync-protocol.md); the wire format is package
// protocol, the reference cloud is package cloud and cmd/outpost-cloud.
//
// It owns: the credentials pairing writes (credentials.go), the HTTP client
// of the protocol (client.go, errors.go), the retry pace (backoff.go), the
// mode machine that turns reachability probes into normal / survivability
// / recovering (mode.go), the pull loop that applies the cloud's revisions
// (sync.go), the outage journal upload (journal.go), the report of the
// emergency SDG overrides in force (overrides.go), and the blobs the
// snapshot's custom prompts name (blobs.go: fetched by every node into its
// own content-addressed directory, each checked against its SHA-256).
//
// It must never write the appliance's state itself: a revision reaches the
// cluster only through the Applier the node gives it (validated, proposed
// through Raft, whole or not at all), and journal records are marked through
// the Journal. It never applies anything from a failed or partial answer,
// and a push only wakes the pull. Blobs are the one thing it writes
// itself: files in the node's own blob directory, never the cluster's
// state, never through Raft, and never bytes whose hash it has not
// checked. The mode machine is pure (its caller feeds the clock); loops
// take their clock, timers and randomness from their configuration, and
// their logger: no globals.
package cloudsync
