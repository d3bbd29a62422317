-- 0004: voicemail uploaded by appliances (docs/sync-protocol.md, "Voicemail
-- upload"). The audio is content-addressed per appliance (the sha256 of
-- the WAV, checked on upload: uploading it again stores nothing new); a
-- message is kept once per (appliance, message_id) and names its audio.
CREATE TABLE voicemail_audio (
    appliance  TEXT NOT NULL,
    sha256     TEXT NOT NULL,
    data       BLOB NOT NULL,
    created_ms INTEGER NOT NULL,
    PRIMARY KEY (appliance, sha256)
) STRICT;

CREATE TABLE voicemail_messages (
    seq         INTEGER PRIMARY KEY,
    appliance   TEXT NOT NULL,
    message_id  TEXT NOT NULL,
    sha256      TEXT NOT NULL,
    message     TEXT NOT NULL,
    received_ms INTEGER NOT NULL,
    UNIQUE (appliance, message_id)
) STRICT;
