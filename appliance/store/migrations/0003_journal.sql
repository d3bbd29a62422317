-- 0003: the outage journal's call records (shared/DESIGN.md, "State: two
-- planes"), with the two-table pattern of 0002's bindings.
--
--   local_call_records  calls this node handled, written only by this node
--                       (Store.PutLocalCallRecords), at once, with or
--                       without quorum; never through Raft.
--   call_records        the cluster's replicated journal, written only by
--                       the Raft FSM (Tx.PutCallRecords).
-- Readers see the union, one row per id (local wins; the rows should be
-- equal anyway).
--
-- A record is immutable: written once, when its call ends, under an id (a
-- UUID) made by the node that handled the call. Writes are INSERT ... ON
-- CONFLICT (id) DO NOTHING: a replay or a second copy is a no-op, the first
-- write wins. There is no version column and nothing is ever updated.
--
-- Times are INTEGER unix milliseconds, UTC, like the bindings'. answer_ms is
-- NULL for a call never answered. The store checks no enumerations
-- (destination, disposition): it stores what it is handed.
--
-- Indexes: end_ms on both, for Reader.CallRecords (newest first, since) and
-- Reader.LocalCallRecordsSince (catch-up).
CREATE TABLE local_call_records (
    id          TEXT NOT NULL UNIQUE,
    call_id     TEXT NOT NULL,
    caller      TEXT NOT NULL,
    caller_name TEXT NOT NULL,
    callee      TEXT NOT NULL,
    dialled     TEXT NOT NULL,
    destination TEXT NOT NULL,
    start_ms    INTEGER NOT NULL,
    answer_ms   INTEGER,
    end_ms      INTEGER NOT NULL,
    disposition TEXT NOT NULL,
    status      INTEGER NOT NULL,
    node        TEXT NOT NULL,
    site        TEXT NOT NULL
) STRICT;

CREATE INDEX local_call_records_end ON local_call_records (end_ms);

CREATE TABLE call_records (
    id          TEXT NOT NULL UNIQUE,
    call_id     TEXT NOT NULL,
    caller      TEXT NOT NULL,
    caller_name TEXT NOT NULL,
    callee      TEXT NOT NULL,
    dialled     TEXT NOT NULL,
    destination TEXT NOT NULL,
    start_ms    INTEGER NOT NULL,
    answer_ms   INTEGER,
    end_ms      INTEGER NOT NULL,
    disposition TEXT NOT NULL,
    status      INTEGER NOT NULL,
    node        TEXT NOT NULL,
    site        TEXT NOT NULL
) STRICT;

CREATE INDEX call_records_end ON call_records (end_ms);
