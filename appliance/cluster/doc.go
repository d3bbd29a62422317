// Package cluster runs the config plane: one hashicorp/raft instance per node
// whose FSM applies typed, versioned commands into the node's SQLite store.
//
// What it owns: Raft's transport (over a listener the node bound), its log
// and stable store, its snapshots, membership changes (bootstrap, join,
// leave), leadership transfer on graceful shutdown, the FSM, and the health
// probes of the other members. Writes are proposed on the leader only;
// Apply on a follower returns ErrNotLeader and the caller forwards (package
// web proxies HTTP writes to the leader whole).
//
// Log entries: byte 0 is the CommandType, byte 1 the payload version, the
// rest the payload (a whole snapshot document for CmdApplySnapshot, JSON for
// the small commands). Types are never renumbered. An unknown type with
// IgnorableFlag is skipped; any other unknown entry halts the FSM: the node
// applies nothing more, says so in /readyz and metrics, and keeps its applied
// index where it was so an upgraded binary replays from there.
//
// Durable log: raft-wal, not raft-boltdb. raft-boltdb/v2 v2.3.1 (its newest
// tag) does not build beside raft v1.8.0: it imports go-metrics/compat,
// which the go-metrics version raft v1.8.0 needs no longer has; raft-wal
// v0.4.0 builds with it. raft-wal is also the faster of the two: an
// append-only segment file per range of entries with no B-tree rewrite per
// batch, fsynced once per append, and it doubles as the stable store.
//
// Snapshots are SQLite online backups of the whole store, written while
// applies go on; the backup carries its own applied index, and the FSM skips
// entries at or below the store's applied index. Raft therefore runs with
// NoSnapshotRestoreOnStart: a restarted node keeps its database and replays
// only the entries it has not applied; a node whose database is older than
// its newest Raft snapshot restores that snapshot first.
//
// It must never serve half a revision: a snapshot is one entry, applied in
// one transaction, and a refused entry (stale revision) rolls back its
// savepoint and changes nothing.
package cluster
