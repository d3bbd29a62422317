-- 0002: blobs (docs/sync-protocol.md, "Blobs"): the custom prompts'
-- recordings (WAV files) the snapshot's prompts[] name by id. An id is the
-- SHA-256 (hex) of the bytes, checked on upload, so a blob never changes
-- and uploading one twice stores it once. At most protocol.MaxBlobBytes
-- each.
CREATE TABLE blobs (
    sha256     TEXT NOT NULL UNIQUE,
    data       BLOB NOT NULL,
    created_ms INTEGER NOT NULL
) STRICT;
