-- relaygate schema 17: a signed body is kept as its DKIM-Signature field(s) (body_prefixes) in
-- front of the admitted body instead of a second copy of the whole message: the admitted bytes
-- are written once. Its own table: SQLite rewrites a whole row, overflow pages and all, to
-- change one column, so a column of `bodies` would cost as much as the copy it saves.
-- No row: the body is `bodies.data` alone (every body stored before this).
CREATE TABLE body_prefixes (
    message_id    TEXT PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,
    prefix        BLOB NOT NULL
);
