-- relaygate schema 10: domain drift states (API.md §5, §14; issue 20). A domain identity is
-- pending, verified, at_risk (records missing, still sending, within [domains] failure_grace),
-- failed (missing for longer: refuses mail) or asserted (added by the operator with --verified:
-- sends, never failed by the re-check). Yesterday's 'failing' rows become 'at_risk' keeping the
-- time they started failing (failing_since: since when the required records are missing).
-- SQLite cannot widen a CHECK in place: the table is rebuilt, and the policy triggers of
-- schema 8 that lived on it are made again.
CREATE TABLE identities_drift (
    id              INTEGER PRIMARY KEY,
    account_id      INTEGER NOT NULL REFERENCES accounts(id),
    kind            TEXT NOT NULL CHECK (kind IN ('domain', 'address')),
    value           TEXT NOT NULL,
    status          TEXT NOT NULL
                    CHECK (status IN ('pending', 'verified', 'at_risk', 'failed', 'asserted')),
    token           TEXT NOT NULL,
    created_at      REAL NOT NULL,
    verified_at     REAL,
    status_reason   TEXT NOT NULL DEFAULT '',
    failing_since   REAL,
    last_checked_at REAL,
    last_check      TEXT NOT NULL DEFAULT '{}',
    UNIQUE (account_id, value)
);
INSERT INTO identities_drift (id, account_id, kind, value, status, token, created_at, verified_at,
                              status_reason, failing_since, last_checked_at, last_check)
SELECT id, account_id, kind, value,
       CASE status WHEN 'failing' THEN 'at_risk' ELSE status END,
       token, created_at, verified_at, status_reason,
       CASE status WHEN 'failing' THEN COALESCE(failing_since, last_checked_at, created_at)
                   ELSE failing_since END,
       last_checked_at, last_check
FROM identities;
DROP TABLE identities;
ALTER TABLE identities_drift RENAME TO identities;
CREATE INDEX identities_value ON identities (value);
CREATE TRIGGER policy_identities_insert AFTER INSERT ON identities BEGIN
    UPDATE policy_generation SET n = n + 1 WHERE id = 1;
END;
CREATE TRIGGER policy_identities_update AFTER UPDATE OF account_id, kind, value, status ON identities BEGIN
    UPDATE policy_generation SET n = n + 1 WHERE id = 1;
END;
CREATE TRIGGER policy_identities_delete AFTER DELETE ON identities BEGIN
    UPDATE policy_generation SET n = n + 1 WHERE id = 1;
END;
UPDATE policy_generation SET n = n + 1 WHERE id = 1;
