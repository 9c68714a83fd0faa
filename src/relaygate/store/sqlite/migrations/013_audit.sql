-- relaygate schema 13: the audit log of management actions (API.md §11): who (key:<id>,
-- user:<id> or cli), what (a dotted action), on which object, when, from which address.
-- Append-only; read per account newest first, paged by id.
CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id  INTEGER NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    target      TEXT NOT NULL DEFAULT '',
    address     TEXT NOT NULL DEFAULT '',
    detail      TEXT NOT NULL DEFAULT '{}',
    created_at  REAL NOT NULL
);
CREATE INDEX audit_log_account ON audit_log (account_id, id);
