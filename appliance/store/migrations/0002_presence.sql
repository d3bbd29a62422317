-- 0002: the presence plane's registration bindings (shared/DESIGN.md,
-- "State: two planes").
--
-- Two tables with the same columns:
--   local_bindings  this node's own registrations, written only by this
--                   node's registrar (Store.PutLocalBindings), at once, with
--                   or without quorum; never through Raft.
--   bindings        the cluster's replicated view, written only by the Raft
--                   FSM (Tx.PutBindings).
-- Readers see the union of both, one row per id, the newest updated_ms
-- winning (local wins a tie).
--
-- A row's version is updated_ms: an upsert replaces a row only when it is
-- strictly newer (last writer wins, replays are no-ops). deleted = 1 is a
-- tombstone (unregistered or expired), kept until pruned so that an older
-- upsert arriving late cannot bring the binding back.
--
-- Unlike the config tables (RFC 3339 text), times here are INTEGER unix
-- milliseconds, UTC: they are compared on every REGISTER and every lookup.
--
-- Ordinary rowid tables with a UNIQUE id, not WITHOUT ROWID: a binding row
-- is some 300 bytes, and a WITHOUT ROWID table keeps whole rows in its
-- interior pages; group commits measured a third slower that way.
-- Indexes: aor for Reader.Bindings, expires_ms for pruning, and updated_ms
-- on local_bindings for Reader.LocalBindings(Since). Every index costs each
-- REGISTER refresh a delete and an insert, so bindings has none on
-- updated_ms until a query needs one.
CREATE TABLE local_bindings (
    id          TEXT NOT NULL UNIQUE,
    aor         TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    username    TEXT NOT NULL,
    site        TEXT NOT NULL,
    contact     TEXT NOT NULL,
    instance_id TEXT NOT NULL,
    reg_id      INTEGER NOT NULL,
    call_id     TEXT NOT NULL,
    cseq        INTEGER NOT NULL,
    transport   TEXT NOT NULL,
    source      TEXT NOT NULL,
    node        TEXT NOT NULL,
    user_agent  TEXT NOT NULL,
    expires_ms  INTEGER NOT NULL,
    updated_ms  INTEGER NOT NULL,
    deleted     INTEGER NOT NULL CHECK (deleted IN (0, 1))
) STRICT;

CREATE INDEX local_bindings_aor ON local_bindings (aor);
CREATE INDEX local_bindings_expires ON local_bindings (expires_ms);
CREATE INDEX local_bindings_updated ON local_bindings (updated_ms);

CREATE TABLE bindings (
    id          TEXT NOT NULL UNIQUE,
    aor         TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    username    TEXT NOT NULL,
    site        TEXT NOT NULL,
    contact     TEXT NOT NULL,
    instance_id TEXT NOT NULL,
    reg_id      INTEGER NOT NULL,
    call_id     TEXT NOT NULL,
    cseq        INTEGER NOT NULL,
    transport   TEXT NOT NULL,
    source      TEXT NOT NULL,
    node        TEXT NOT NULL,
    user_agent  TEXT NOT NULL,
    expires_ms  INTEGER NOT NULL,
    updated_ms  INTEGER NOT NULL,
    deleted     INTEGER NOT NULL CHECK (deleted IN (0, 1))
) STRICT;

CREATE INDEX bindings_aor ON bindings (aor);
CREATE INDEX bindings_expires ON bindings (expires_ms);
