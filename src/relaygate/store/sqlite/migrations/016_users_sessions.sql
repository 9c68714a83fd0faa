-- relaygate schema 16: dashboard users and their server-side sessions (API.md §12).
-- A user is an operator (account_id NULL, operator 1) or one account's user. password_hash is
-- argon2id; totp_secret is base32 ('' when the user has no second factor).
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    email TEXT NOT NULL,
    account_id INTEGER REFERENCES accounts(id),
    operator INTEGER NOT NULL DEFAULT 0,
    password_hash TEXT NOT NULL,
    totp_secret TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL,
    disabled_at REAL,
    last_sign_in_at REAL,
    password_changed_at REAL,
    CHECK ((operator = 1 AND account_id IS NULL) OR (operator = 0 AND account_id IS NOT NULL))
);
CREATE UNIQUE INDEX IF NOT EXISTS users_email ON users (email);
CREATE INDEX IF NOT EXISTS users_account ON users (account_id);
-- id is the SHA-256 of the cookie's token: a copy of the table opens no session.
CREATE TABLE IF NOT EXISTS dashboard_sessions (
    id TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    csrf TEXT NOT NULL,
    stage TEXT NOT NULL DEFAULT 'signed_in',
    account_id INTEGER REFERENCES accounts(id),
    created_at REAL NOT NULL,
    seen_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS dashboard_sessions_user ON dashboard_sessions (user_id);
CREATE INDEX IF NOT EXISTS dashboard_sessions_seen ON dashboard_sessions (seen_at);
