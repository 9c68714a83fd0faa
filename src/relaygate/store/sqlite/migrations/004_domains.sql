-- relaygate schema 4: sending domains. DKIM keys and their lifecycle, the result of the last DNS
-- check on each domain identity, and a per-message flag the relay sets once the body is signed.
CREATE TABLE dkim_keys (
    id            INTEGER PRIMARY KEY,
    domain        TEXT NOT NULL,
    selector      TEXT NOT NULL,
    algorithm     TEXT NOT NULL CHECK (algorithm IN ('rsa', 'ed25519')),
    private_path  TEXT NOT NULL,
    public_key    TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('pending', 'active', 'retiring', 'retired')),
    created_at    REAL NOT NULL,
    activated_at  REAL,
    retire_after  REAL,
    grace         REAL NOT NULL DEFAULT 604800,
    published     INTEGER,
    checked_at    REAL,
    UNIQUE (domain, selector)
);
CREATE INDEX dkim_keys_domain_state ON dkim_keys (domain, state);

ALTER TABLE identities ADD COLUMN status_reason TEXT NOT NULL DEFAULT '';
ALTER TABLE identities ADD COLUMN failing_since REAL;
ALTER TABLE identities ADD COLUMN last_checked_at REAL;
ALTER TABLE identities ADD COLUMN last_check TEXT NOT NULL DEFAULT '{}';

ALTER TABLE messages ADD COLUMN signed INTEGER NOT NULL DEFAULT 0;
