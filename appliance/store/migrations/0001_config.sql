-- 0001: the config plane (shared/DESIGN.md, "State").
--
-- Only the Raft FSM writes these tables, through store.Tx; every other
-- component reads them through store.Reader. Every list of the snapshot keeps
-- its order in an ord column so Reader.Snapshot reassembles it exactly; lists
-- that can be JSON null rather than [] record that in a *_null column or in
-- null_lists, because decoding the canonical document tells them apart.
--
-- Child tables (site_*, user_numbers) name their parent's id but declare no
-- FOREIGN KEY: ReplaceConfig always writes parents and children together, and
-- a foreign key would turn its DELETE of a whole table from SQLite's truncate
-- into a row-by-row check, several times slower on a 10,000-user account.

-- Single values: revision, applied_index, mode, mode_since.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value ANY
) STRICT, WITHOUT ROWID;

-- The canonical JSON document of the applied revision, byte for byte.
CREATE TABLE snapshot_doc (
    slot     INTEGER PRIMARY KEY CHECK (slot = 1),
    revision INTEGER NOT NULL,
    body     BLOB NOT NULL
) STRICT;

-- Top-level and singleton lists that were null (or absent) in the snapshot:
-- 'sites', 'users', 'sdgs', 'numbers', 'trunks', 'admins',
-- 'callout.caller_ids', 'embed.allowed_origins'.
CREATE TABLE null_lists (
    name TEXT PRIMARY KEY
) STRICT, WITHOUT ROWID;

CREATE TABLE account (
    slot      INTEGER PRIMARY KEY CHECK (slot = 1),
    id        TEXT NOT NULL,
    name      TEXT NOT NULL,
    sip_realm TEXT NOT NULL
) STRICT;

CREATE TABLE sites (
    ord                    INTEGER PRIMARY KEY,
    id                     TEXT NOT NULL UNIQUE,
    name                   TEXT NOT NULL,
    country                TEXT NOT NULL,
    timezone               TEXT NOT NULL,
    area_code              TEXT NOT NULL,
    main_number            TEXT NOT NULL,
    emergency_numbers_null INTEGER NOT NULL CHECK (emergency_numbers_null IN (0, 1)),
    elin_pool_null         INTEGER NOT NULL CHECK (elin_pool_null IN (0, 1)),
    street                 TEXT NOT NULL,
    city                   TEXT NOT NULL,
    region                 TEXT NOT NULL,
    postal_code            TEXT NOT NULL,
    address_country        TEXT NOT NULL
) STRICT;

CREATE TABLE site_emergency_numbers (
    site_id TEXT NOT NULL,
    ord     INTEGER NOT NULL,
    number  TEXT NOT NULL,
    PRIMARY KEY (site_id, ord)
) STRICT, WITHOUT ROWID;

CREATE TABLE site_elins (
    site_id TEXT NOT NULL,
    ord     INTEGER NOT NULL,
    elin    TEXT NOT NULL,
    PRIMARY KEY (site_id, ord)
) STRICT, WITHOUT ROWID;

CREATE INDEX site_elins_elin ON site_elins (elin);

CREATE TABLE users (
    ord          INTEGER PRIMARY KEY,
    id           TEXT NOT NULL UNIQUE,
    site         TEXT NOT NULL,
    name         TEXT NOT NULL,
    email        TEXT NOT NULL,
    extension    TEXT NOT NULL,
    numbers_null INTEGER NOT NULL CHECK (numbers_null IN (0, 1)),
    sip_username TEXT NOT NULL UNIQUE,
    ha1_md5      TEXT NOT NULL,
    ha1_sha256   TEXT NOT NULL
) STRICT;

CREATE INDEX users_extension ON users (extension);

-- A user's direct numbers (DIDs), in order.
CREATE TABLE user_numbers (
    user_id TEXT NOT NULL,
    ord     INTEGER NOT NULL,
    number  TEXT NOT NULL,
    PRIMARY KEY (user_id, ord)
) STRICT, WITHOUT ROWID;

-- Routes are stored as canonical JSON (account.Route marshalled), with their
-- type beside them for queries that only need the kind.
CREATE TABLE sdgs (
    ord        INTEGER PRIMARY KEY,
    id         TEXT NOT NULL UNIQUE,
    site       TEXT NOT NULL,
    name       TEXT NOT NULL,
    extension  TEXT NOT NULL,
    route_type TEXT NOT NULL,
    route      TEXT NOT NULL
) STRICT;

CREATE INDEX sdgs_extension ON sdgs (extension);

-- The snapshot's numbers[]: account numbers routed somewhere other than a
-- user's DID.
CREATE TABLE numbers (
    ord        INTEGER PRIMARY KEY,
    number     TEXT NOT NULL UNIQUE,
    site       TEXT NOT NULL,
    route_type TEXT NOT NULL,
    route      TEXT NOT NULL
) STRICT;

-- codecs is a JSON array of codec names, in preference order (or null).
CREATE TABLE trunks (
    ord                INTEGER PRIMARY KEY,
    id                 TEXT NOT NULL UNIQUE,
    site               TEXT NOT NULL,
    name               TEXT NOT NULL,
    host               TEXT NOT NULL,
    port               INTEGER NOT NULL,
    transport          TEXT NOT NULL,
    priority           INTEGER NOT NULL,
    weight             INTEGER NOT NULL,
    options_interval_s INTEGER NOT NULL,
    max_channels       INTEGER NOT NULL,
    codecs             TEXT NOT NULL
) STRICT;

CREATE INDEX trunks_site ON trunks (site, priority, weight);

CREATE TABLE callout (
    slot            INTEGER PRIMARY KEY CHECK (slot = 1),
    greeting_prompt TEXT NOT NULL,
    require_press_1 INTEGER NOT NULL CHECK (require_press_1 IN (0, 1))
) STRICT;

CREATE TABLE callout_caller_ids (
    ord       INTEGER PRIMARY KEY,
    country   TEXT NOT NULL,
    number    TEXT NOT NULL,
    dedicated INTEGER NOT NULL CHECK (dedicated IN (0, 1))
) STRICT;

CREATE TABLE admins (
    ord      INTEGER PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    role     TEXT NOT NULL,
    bcrypt   TEXT NOT NULL
) STRICT;

CREATE TABLE embed_origins (
    ord    INTEGER PRIMARY KEY,
    origin TEXT NOT NULL
) STRICT;

-- What a dialled string reaches: a user's extension or DID, an SDG's
-- extension, or a numbers[] entry (target_id is then the number itself).
CREATE TABLE dial_index (
    dial      TEXT PRIMARY KEY,
    kind      TEXT NOT NULL CHECK (kind IN ('user', 'sdg', 'number')),
    target_id TEXT NOT NULL,
    site      TEXT NOT NULL
) STRICT, WITHOUT ROWID;

-- Cluster members as the FSM last recorded them. updated_at is RFC 3339 UTC.
CREATE TABLE members (
    id         TEXT PRIMARY KEY,
    raft_addr  TEXT NOT NULL,
    http_addr  TEXT NOT NULL,
    sip_addr   TEXT NOT NULL,
    site       TEXT NOT NULL,
    updated_at TEXT NOT NULL
) STRICT, WITHOUT ROWID;
