-- relaygate schema 18: the recipient search (dashboard, GET /v1/messages?recipient=) compares
-- addresses without case; an index in that collation lets it find an address's messages
-- directly instead of walking every recipient of the account. It replaces the binary one,
-- which only that search used.
DROP INDEX IF EXISTS recipients_address;
CREATE INDEX recipients_address ON recipients (account_id, address COLLATE NOCASE);
