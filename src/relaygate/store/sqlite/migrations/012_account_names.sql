-- relaygate schema 12: account names are unique (exact, case-sensitive), so `--account NAME`
-- names one account. Accounts that already share a name keep the oldest one's (lowest id)
-- name; each later one is renamed '<name> (<id>)' -- ids, keys, webhooks and payloads
-- (user_id) are untouched, only the label changes, and `relaygate account list` shows it.
UPDATE accounts SET name = name || ' (' || id || ')'
 WHERE EXISTS (SELECT 1 FROM accounts AS older WHERE older.name = accounts.name AND older.id < accounts.id);
CREATE UNIQUE INDEX accounts_name ON accounts (name);
