-- 0007: SDG routes in the journal and rotating groups' state (issue 6).
--
-- route is a call's path through SDGs and IVR menus, one line as the call
-- handling wrote it (e.g. "sdg:sdg-frontdesk > group:simultaneous >
-- member:u-bob"), '' for a plain call and for every record made before
-- this migration. Both call record tables get it, so the union reads it
-- from either.
ALTER TABLE local_call_records ADD COLUMN route TEXT NOT NULL DEFAULT '';

ALTER TABLE call_records ADD COLUMN route TEXT NOT NULL DEFAULT '';

-- sdg_rotations is, for each rotating group, the member who answered its
-- last call: the next call starts after them. The group key is opaque to
-- the store (the call handling's, e.g. "sdg:sdg-sales/route"). Replicated
-- only: written by the Raft FSM alone (put_rotation, Tx.PutRotation); each
-- node serves it from memory and reads this table when the FSM applied a
-- change. The newest updated_ms wins, ties going to the greater member, so
-- a late, older command never moves a group back and every node keeps the
-- same row whatever the order. Times are unix milliseconds, UTC.
CREATE TABLE sdg_rotations (
    group_key  TEXT NOT NULL PRIMARY KEY,
    member     TEXT NOT NULL,
    updated_ms INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
