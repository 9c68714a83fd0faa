-- relaygate schema 3: mail received for relaygate's own bounce/feedback addresses, kept as sent
-- until the bounce processor has read it (processed = 1).
CREATE TABLE inbound (
    id            TEXT PRIMARY KEY,
    received_at   REAL NOT NULL,
    mail_from     TEXT NOT NULL,
    rcpts         TEXT NOT NULL,
    peer          TEXT NOT NULL,
    data          BLOB NOT NULL,
    processed     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX inbound_pending ON inbound (processed, received_at);
