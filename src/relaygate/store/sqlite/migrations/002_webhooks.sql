-- relaygate schema 2: webhook endpoints, their deliveries (one per event and endpoint), attempts,
-- and the fan-out cursor over the events outbox.
--
-- webhooks.secret is kept in clear: it is the HMAC key every delivery is signed with, so it
-- cannot be hashed. previous_secret stays valid for signing until previous_secret_expires_at
-- (rotation grace). from_event_id: the endpoint receives only events with a larger id (those
-- that happened after it was registered).
CREATE TABLE webhooks (
    id                         TEXT PRIMARY KEY,
    account_id                 INTEGER NOT NULL REFERENCES accounts(id),
    url                        TEXT NOT NULL,
    events                     TEXT NOT NULL DEFAULT '',
    secret                     TEXT NOT NULL,
    previous_secret            TEXT,
    previous_secret_expires_at REAL,
    from_event_id              INTEGER NOT NULL DEFAULT 0,
    created_at                 REAL NOT NULL,
    removed_at                 REAL
);
CREATE INDEX webhooks_account ON webhooks (account_id, removed_at);

CREATE TABLE webhook_deliveries (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook_id       TEXT NOT NULL REFERENCES webhooks(id),
    event_id         INTEGER NOT NULL,
    account_id       INTEGER NOT NULL,
    message_id       TEXT,
    event_type       TEXT NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('pending', 'active', 'succeeded', 'abandoned')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  REAL NOT NULL,
    lease_owner      TEXT,
    lease_expires_at REAL,
    last_status      INTEGER,
    last_error       TEXT NOT NULL DEFAULT '',
    replays          INTEGER NOT NULL DEFAULT 0,
    created_at       REAL NOT NULL,
    updated_at       REAL NOT NULL,
    UNIQUE (webhook_id, event_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (state, next_attempt_at);
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (webhook_id, state, next_attempt_at);
CREATE INDEX webhook_deliveries_order ON webhook_deliveries (webhook_id, message_id, id);

CREATE TABLE webhook_attempts (
    id           INTEGER PRIMARY KEY,
    delivery_id  INTEGER NOT NULL REFERENCES webhook_deliveries(id),
    attempt      INTEGER NOT NULL,
    at           REAL NOT NULL,
    status       INTEGER,
    outcome      TEXT NOT NULL,
    error        TEXT NOT NULL DEFAULT '',
    duration_ms  INTEGER NOT NULL,
    UNIQUE (delivery_id, attempt)
);

CREATE TABLE dispatch_cursor (
    id             INTEGER PRIMARY KEY CHECK (id = 1),
    last_event_id  INTEGER NOT NULL
);
INSERT INTO dispatch_cursor (id, last_event_id) SELECT 1, COALESCE(MAX(id), 0) FROM events;
