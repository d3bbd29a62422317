// Package store owns the config plane's SQLite database on one node: its
// schema and versioned migrations, the write transaction the Raft FSM applies
// commands in, the read-only queries every other component uses, and the
// online backup and restore that FSM snapshots are made of.
//
// The database is opened twice: a single-connection handle that is the only
// writer (WAL, synchronous=NORMAL, foreign keys on, BEGIN IMMEDIATE), and a
// pool of read-only, query_only connections behind Reader. Readers never block
// the writer and always see whole committed transactions.
//
// What store must never do:
//   - write a replicated table outside Store.Write; only the cluster's FSM
//     calls Write, Backup and Restore, everything else gets a *Reader;
//   - decide anything about the configuration: it stores what the FSM hands
//     it. Validation belongs to package account, routing to sdg and calls;
//   - talk to the network, read the clock to make a decision, or keep
//     configuration in memory beside the tables;
//   - open a database whose schema is newer than this binary knows.
//
// Schema changes are new numbered files in migrations/ (NNNN_name.sql); a
// released migration is never edited.
package store
