-- relaygate schema 7: per-recipient bodies (open/click tracking) and recipient ordinals.
ALTER TABLE messages ADD COLUMN tracked INTEGER NOT NULL DEFAULT 0;
ALTER TABLE recipients ADD COLUMN ordinal INTEGER NOT NULL DEFAULT 0;
CREATE INDEX recipients_ordinal ON recipients (message_id, ordinal);
CREATE TABLE recipient_bodies (
    message_id    TEXT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    ordinal       INTEGER NOT NULL,
    data          BLOB NOT NULL,
    signed        INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (message_id, ordinal)
);
