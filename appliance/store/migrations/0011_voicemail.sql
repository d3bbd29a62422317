-- 0011: voicemail (issue 12; docs/sip.md, "Voicemail").
--
-- users.voicemail: users[].voicemail, an extension of the contract, as its
-- canonical JSON ({"enabled", "no_answer_s", "greeting"}); NULL when the
-- user has none (the defaults). Config plane: written only by the FSM.
ALTER TABLE users ADD COLUMN voicemail TEXT;

-- The mailboxes' messages, on the presence plane with the two-table
-- pattern of the ELIN mappings (0005):
--
--   local_voicemail  messages this node recorded, and state changes this
--                    node made (a message heard and saved, deleted, its
--                    upload), written only by this node
--                    (Store.PutLocalVoicemail, MarkVoicemail), at once,
--                    with or without quorum; never through Raft.
--   voicemail        the cluster's replicated view, written only by the
--                    FSM (Tx.PutVoicemail) from the nodes' shared batches.
--
-- One row per message id (a UUID made by the recording node). What the
-- recording says (mailbox, caller, call record, received_ms, duration_ms,
-- sha256, size, node) never changes: the first write wins. The state only
-- moves forward and merges by MAX, in both tables and in readers: saved
-- (0 new, 1 saved), deleted (0, 1), uploaded_ms (0: not uploaded) and
-- updated_ms (the version the sharer re-reads by). So a replay, a second
-- copy, or two nodes changing the same message in any order end in the
-- same row everywhere. Readers see the union, merged per id the same way.
--
-- The audio is not here: the recording node keeps the WAV in
-- <data_dir>/voicemail/<sha256>.wav and other nodes fetch it by sha256
-- (appliance/voicemail); it never crosses Raft.
--
-- Times are unix milliseconds, UTC.
CREATE TABLE voicemail (
    id          TEXT NOT NULL PRIMARY KEY,
    mailbox     TEXT NOT NULL,
    caller      TEXT NOT NULL,
    caller_name TEXT NOT NULL,
    call_record TEXT NOT NULL,
    received_ms INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL,
    sha256      TEXT NOT NULL,
    size        INTEGER NOT NULL,
    node        TEXT NOT NULL,
    saved       INTEGER NOT NULL,
    deleted     INTEGER NOT NULL,
    uploaded_ms INTEGER NOT NULL,
    updated_ms  INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE INDEX voicemail_mailbox ON voicemail (mailbox);

CREATE TABLE local_voicemail (
    id          TEXT NOT NULL PRIMARY KEY,
    mailbox     TEXT NOT NULL,
    caller      TEXT NOT NULL,
    caller_name TEXT NOT NULL,
    call_record TEXT NOT NULL,
    received_ms INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL,
    sha256      TEXT NOT NULL,
    size        INTEGER NOT NULL,
    node        TEXT NOT NULL,
    saved       INTEGER NOT NULL,
    deleted     INTEGER NOT NULL,
    uploaded_ms INTEGER NOT NULL,
    updated_ms  INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE INDEX local_voicemail_mailbox ON local_voicemail (mailbox);
CREATE INDEX local_voicemail_updated ON local_voicemail (updated_ms);
