-- relaygate schema 6: idempotency keys for /v1/send, and accounts' own templates.
CREATE TABLE idempotency (
    account_id    INTEGER NOT NULL,
    key           TEXT NOT NULL,
    request_hash  TEXT NOT NULL,
    message_id    TEXT NOT NULL,
    created_at    REAL NOT NULL,
    PRIMARY KEY (account_id, key)
);

CREATE TABLE templates (
    account_id    INTEGER NOT NULL,
    slug          TEXT NOT NULL,
    subject       TEXT NOT NULL,
    html          TEXT NOT NULL,
    text          TEXT NOT NULL DEFAULT '',
    source        TEXT NOT NULL DEFAULT 'created',
    created_at    REAL NOT NULL,
    updated_at    REAL NOT NULL,
    PRIMARY KEY (account_id, slug)
);
