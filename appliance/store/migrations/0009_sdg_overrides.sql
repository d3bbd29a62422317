-- 0009: emergency SDG overrides (issue 7).
--
-- An override re-points an SDG's route during an outage: while its row is
-- here, calls to the SDG walk route (the canonical JSON of an
-- account.Route) instead of the route the snapshot gives it. by is who
-- made it (an admin's username, or what the API caller said), at_ms when
-- (unix milliseconds, UTC, stamped by the proposer), revision the config
-- revision in force when it was made. Replicated: written by the Raft FSM
-- alone (set_sdg_override, Tx.SetSDGOverride). A newer config revision
-- that changes or removes the SDG drops its row in the same transaction
-- (the cloud supersedes the override), as does one after which the route
-- no longer validates (Tx.SupersedeSDGOverrides). "by" is quoted: BY is an
-- SQL keyword.
CREATE TABLE sdg_overrides (
    sdg_id   TEXT NOT NULL PRIMARY KEY,
    route    TEXT NOT NULL,
    "by"     TEXT NOT NULL,
    at_ms    INTEGER NOT NULL,
    revision INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
