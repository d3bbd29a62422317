-- 0004: which call records the cloud has taken (docs/sync-protocol.md,
-- "Journal upload"). The leader uploads the journal and, once the cloud
-- answered a batch, marks its records here through Raft (Tx.
-- MarkCallRecordsUploaded), so a new leader does not send them again. A
-- record is pending while its id is in neither call record table's
-- uploaded set; records themselves are never changed.
--
-- uploaded_ms is when the leader proposed the mark (unix milliseconds,
-- UTC, from the command, the same on every node).
CREATE TABLE call_records_uploaded (
    id          TEXT NOT NULL PRIMARY KEY,
    uploaded_ms INTEGER NOT NULL
) WITHOUT ROWID;

-- The upload reads what is pending oldest first, a batch at a time: with
-- (end_ms, id) indexes SQLite merges the two tables in order and stops at
-- the batch's end instead of sorting the whole journal for every batch.
CREATE INDEX local_call_records_end_id ON local_call_records (end_ms, id);
CREATE INDEX call_records_end_id ON call_records (end_ms, id);
