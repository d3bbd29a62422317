// Package store owns one node's SQLite database: its schema and versioned
// migrations, the write transaction the Raft FSM applies commands in, the
// writes of the node's local-first tables, the read-only queries every other
// component uses, and the online backup and restore that FSM snapshots are
// made of.
//
// The database holds both planes of shared/DESIGN.md ("State: two planes"):
//   - the config plane (sites, users, numbers, SDGs, trunks, members, mode;
//     migrations/0001_config.sql; the account's custom prompts, name, blob
//     id and SHA-256, since 0008_prompts.sql: the WAV blobs are files
//     each node keeps in <data_dir>/blobs, never in the database), written
//     only by the FSM through Write;
//   - the presence plane's registration bindings (0002_presence.sql), in two
//     tables with the same columns. local_bindings holds this node's own
//     registrations and has one owner, this node's registrar, which writes
//     it directly with Store.PutLocalBindings and PruneLocalBindings, at
//     once and with or without quorum; never through Raft. bindings is the
//     cluster's replicated view, written only by the FSM (Tx.PutBindings,
//     Tx.PruneBindings) from the registrars' shared batches. Both keep the
//     newest version of a binding by UpdatedAt (last writer wins, an equal
//     version is ignored) and keep tombstones until they are pruned, so a
//     late, older copy cannot bring an unregistered phone back. Readers see
//     the union, one row per binding ID, the newest winning;
//   - the outage journal's call records (0003_journal.sql), in the same two
//     tables pattern: local_call_records holds the calls this node handled,
//     written directly by this node with Store.PutLocalCallRecords, at once
//     and with or without quorum; call_records is the replicated journal,
//     written only by the FSM (Tx.PutCallRecords). Records are immutable and
//     keyed by a UUID the handling node made, so writes are insert-if-absent
//     (the first write wins, replays are no-ops). Readers see the union, one
//     row per ID. Since schema 7 a record carries its route through SDGs
//     and IVR menus (route, empty for a plain call and for older records);
//   - rotating groups' state (0007_routes_rotations.sql): sdg_rotations,
//     for each group key the member who answered its last call, written
//     only by the FSM (Tx.PutRotation), the newest time winning (ties to
//     the greater member), so a late, older command changes nothing. There
//     is no local table: the node serves it from memory and re-reads it
//     when the FSM has applied a change.
//
// The database is opened twice: a single-connection handle that is the only
// writer (WAL, synchronous=NORMAL, foreign keys on, BEGIN IMMEDIATE, a 64 MiB
// page cache), and a pool of read-only, query_only connections behind
// Reader. Every write, the FSM's and the registrar's, takes the same lock and
// runs on that one connection, so a big group commit of bindings delays an
// FSM apply by as long as it takes. Readers never block the writer and
// always see whole committed transactions.
//
// Snapshots: an FSM snapshot is a Backup of the whole file, so it carries the
// snapshotting node's local_bindings and local_call_records too. Restore
// therefore replaces everything except those two local-first tables: it
// keeps the receiving node's own rows (copying them into the backup before it
// goes live, under the write lock) and drops the ones in the backup, which on
// another node are someone else's. A node rebuilt from a backup starts with
// no local bindings and no local call records; its phones reappear as they
// register again, and meanwhile the replicated bindings route to them; its
// journal is whatever had been replicated.
//
// Times are RFC 3339 text in the config tables and integer unix
// milliseconds (UTC) in the binding and call record tables, so bindings are
// versioned, and expire, with millisecond precision.
//
// What store must never do:
//   - write a replicated table outside Store.Write; only the cluster's FSM
//     calls Write, Backup and Restore, only the registrar calls
//     PutLocalBindings and PruneLocalBindings, only the node's call handling
//     calls PutLocalCallRecords, everything else gets a *Reader;
//   - decide anything about the configuration or about registrations: it
//     stores what the FSM and the registrar hand it. Validation belongs to
//     package account, routing to sdg and calls, binding policy to registrar;
//   - talk to the network, read the clock to make a decision (queries that
//     depend on time take now), or keep state in memory beside the tables;
//   - open a database whose schema is newer than this binary knows.
//
// Schema changes are new numbered files in migrations/ (NNNN_name.sql); a
// released migration is never edited.
package store
