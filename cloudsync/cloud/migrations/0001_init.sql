-- 0001: outpost-cloud's state (docs/cloud.md, "The store").
--
--   snapshot          the current desired state: one row (id 1) once the
--                     first revision exists; the document is the canonical
--                     JSON encoding, its "revision" equal to the row's.
--   revisions         one row per revision: the ops (protocol.Op, JSON array)
--                     that turned the previous revision into this one. Only
--                     the newest rows are kept (Options.History); a
--                     changes request older than the oldest row gets 410.
--   pairing_codes     one-use codes, stored as the SHA-256 (hex) of the
--                     normalised code, never in clear.
--   appliances        paired appliances: SHA-256 (hex) of the bearer secret,
--                     the push key (hex; the cloud signs pushes with it, so
--                     it is stored as is), the last hello and the last ack.
--   journal_records   call records uploaded by appliances, one per
--                     (appliance, record_id): a retried upload is a no-op.
--   idempotency_keys  the first answer to each journal batch, replayed for
--                     a batch sent again with the same key.
--
-- Times are INTEGER unix milliseconds, UTC. JSON is stored as TEXT.
CREATE TABLE snapshot (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    revision   INTEGER NOT NULL,
    document   TEXT NOT NULL,
    updated_ms INTEGER NOT NULL
) STRICT;

CREATE TABLE revisions (
    revision   INTEGER PRIMARY KEY,
    created_ms INTEGER NOT NULL,
    ops        TEXT NOT NULL
) STRICT;

CREATE TABLE pairing_codes (
    code_hash  TEXT PRIMARY KEY,
    appliance  TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL,
    used_ms    INTEGER
) STRICT;

CREATE TABLE appliances (
    name           TEXT PRIMARY KEY,
    secret_hash    TEXT NOT NULL,
    push_key       TEXT NOT NULL,
    paired_ms      INTEGER NOT NULL,
    push_url       TEXT NOT NULL DEFAULT '',
    node_id        TEXT NOT NULL DEFAULT '',
    version        TEXT NOT NULL DEFAULT '',
    hello_revision INTEGER,
    hello_ms       INTEGER,
    ack_revision   INTEGER,
    ack_status     TEXT NOT NULL DEFAULT '',
    ack_problems   TEXT NOT NULL DEFAULT '[]',
    ack_node_id    TEXT NOT NULL DEFAULT '',
    ack_ms         INTEGER
) STRICT;

CREATE TABLE journal_records (
    seq         INTEGER PRIMARY KEY,
    appliance   TEXT NOT NULL,
    record_id   TEXT NOT NULL,
    record      TEXT NOT NULL,
    received_ms INTEGER NOT NULL,
    UNIQUE (appliance, record_id)
) STRICT;

CREATE TABLE idempotency_keys (
    appliance  TEXT NOT NULL,
    key        TEXT NOT NULL,
    response   TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    PRIMARY KEY (appliance, key)
) STRICT;
