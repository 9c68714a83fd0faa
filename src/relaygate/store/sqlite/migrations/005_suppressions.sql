-- relaygate schema 5: the per-account suppression list.
CREATE TABLE suppressions (
    account_id    INTEGER NOT NULL,
    address       TEXT NOT NULL,
    reason        TEXT NOT NULL,
    bounce_type   TEXT NOT NULL DEFAULT 'hard',
    source        TEXT NOT NULL,
    event_id      INTEGER,
    created_at    REAL NOT NULL,
    expires_at    REAL,
    PRIMARY KEY (account_id, address)
);
