-- relaygate schema 1: accounts, keys, identities, messages, recipients, events (the outbox).
CREATE TABLE accounts (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL,
    plan          TEXT NOT NULL CHECK (plan IN ('free', 'trial', 'paid')),
    daily_quota   INTEGER NOT NULL,
    rate_limit    INTEGER NOT NULL,
    track_opens   INTEGER NOT NULL DEFAULT 0,
    track_clicks  INTEGER NOT NULL DEFAULT 0,
    created_at    REAL NOT NULL
);

CREATE TABLE api_keys (
    id            TEXT PRIMARY KEY,
    account_id    INTEGER NOT NULL REFERENCES accounts(id),
    name          TEXT NOT NULL DEFAULT '',
    scopes        TEXT NOT NULL,
    secret_hash   TEXT NOT NULL UNIQUE,
    hint          TEXT NOT NULL,
    created_at    REAL NOT NULL,
    revoked_at    REAL
);

CREATE TABLE identities (
    id            INTEGER PRIMARY KEY,
    account_id    INTEGER NOT NULL REFERENCES accounts(id),
    kind          TEXT NOT NULL CHECK (kind IN ('domain', 'address')),
    value         TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('pending', 'verified', 'failing')),
    token         TEXT NOT NULL,
    created_at    REAL NOT NULL,
    verified_at   REAL,
    UNIQUE (account_id, value)
);
CREATE INDEX identities_value ON identities (value);

CREATE TABLE messages (
    id            TEXT PRIMARY KEY,
    account_id    INTEGER NOT NULL REFERENCES accounts(id),
    channel       TEXT NOT NULL,
    from_addr     TEXT NOT NULL,
    sender_domain TEXT NOT NULL,
    subject       TEXT NOT NULL DEFAULT '',
    header_message_id TEXT NOT NULL,
    tags          TEXT NOT NULL DEFAULT '[]',
    size          INTEGER NOT NULL,
    created_at    REAL NOT NULL
);
CREATE INDEX messages_account_created ON messages (account_id, created_at DESC, id DESC);

CREATE TABLE bodies (
    message_id    TEXT PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,
    data          BLOB NOT NULL
);

CREATE TABLE message_tags (
    message_id    TEXT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    account_id    INTEGER NOT NULL,
    tag           TEXT NOT NULL,
    PRIMARY KEY (message_id, tag)
);
CREATE INDEX message_tags_lookup ON message_tags (account_id, tag);

CREATE TABLE recipients (
    id               INTEGER PRIMARY KEY,
    message_id       TEXT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    account_id       INTEGER NOT NULL,
    address          TEXT NOT NULL,
    domain           TEXT NOT NULL,
    kind             TEXT NOT NULL CHECK (kind IN ('to', 'cc', 'bcc')),
    state            TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    queued_at        REAL NOT NULL,
    next_attempt_at  REAL NOT NULL,
    lease_owner      TEXT,
    lease_expires_at REAL,
    lease_losses     INTEGER NOT NULL DEFAULT 0,
    last_response    TEXT NOT NULL DEFAULT '',
    updated_at       REAL NOT NULL
);
CREATE INDEX recipients_due ON recipients (state, next_attempt_at);
CREATE INDEX recipients_message ON recipients (message_id);
CREATE INDEX recipients_address ON recipients (account_id, address);

CREATE TABLE events (
    id            INTEGER PRIMARY KEY,
    account_id    INTEGER NOT NULL,
    message_id    TEXT,
    recipient_id  INTEGER,
    type          TEXT NOT NULL,
    state_from    TEXT,
    state_to      TEXT,
    created_at    REAL NOT NULL,
    data          TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX events_message ON events (message_id, id);

CREATE TABLE usage_daily (
    account_id    INTEGER NOT NULL,
    day           TEXT NOT NULL,
    recipients    INTEGER NOT NULL,
    PRIMARY KEY (account_id, day)
);

CREATE TABLE usage_second (
    account_id    INTEGER NOT NULL,
    second        INTEGER NOT NULL,
    requests      INTEGER NOT NULL,
    PRIMARY KEY (account_id, second)
);
