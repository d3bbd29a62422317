-- 0008: the account's custom prompts, an extension of the snapshot
-- (docs/architecture.md, "Extensions to the contract").
--
-- One row per prompts[] entry, in snapshot order: the prompt name routes
-- use, the blob id the cloud serves the WAV under, and its SHA-256 (hex).
-- Config plane: written only by the Raft FSM (ReplaceConfig, ApplyChanges).
-- No prompts is no rows (the snapshot has none as nil, never null or an
-- empty list), so a snapshot applied before this migration needs nothing.
-- The WAV files themselves are not here: each node keeps them in
-- <data_dir>/blobs, fetched from the cloud, and they never cross Raft.
CREATE TABLE prompts (
    ord    INTEGER PRIMARY KEY,
    name   TEXT NOT NULL UNIQUE,
    blob   TEXT NOT NULL,
    sha256 TEXT NOT NULL
) STRICT;
