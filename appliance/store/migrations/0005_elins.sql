-- 0005: ELIN mappings (issue 5). An emergency call goes out with an ELIN of
-- the caller's site as its caller ID; for 2 hours a call to that ELIN from
-- the PSTN rings the caller back. Which ELIN is held for whom is on the
-- presence plane: the node placing the call writes local_elin_mappings at
-- once, with or without quorum, and shares it through Raft (put_elins) into
-- elin_mappings on every node. One row per ELIN (id "elin:<ELIN>"): the
-- newest updated_ms wins, in both tables, so merging is idempotent.
--
-- Times are unix milliseconds, UTC.
CREATE TABLE elin_mappings (
    id         TEXT NOT NULL PRIMARY KEY,
    elin       TEXT NOT NULL,
    site       TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    called_ms  INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE local_elin_mappings (
    id         TEXT NOT NULL PRIMARY KEY,
    elin       TEXT NOT NULL,
    site       TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    called_ms  INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE INDEX local_elin_mappings_updated ON local_elin_mappings (updated_ms);
