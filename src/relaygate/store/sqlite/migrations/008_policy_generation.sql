-- relaygate schema 8: a generation number that moves on every change to the sending policy
-- (accounts, API keys, identities, account templates), whatever wrote it: processes that cache
-- the policy (Store.policy) learn of a change made elsewhere from it (see PolicyCache). Only
-- the columns the cached reads use count (an identity's last DNS check time does not).
CREATE TABLE policy_generation (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    n             INTEGER NOT NULL
);
INSERT INTO policy_generation (id, n) VALUES (1, 0);

CREATE TRIGGER policy_accounts_insert AFTER INSERT ON accounts BEGIN
    UPDATE policy_generation SET n = n + 1 WHERE id = 1;
END;
CREATE TRIGGER policy_accounts_update AFTER UPDATE ON accounts BEGIN
    UPDATE policy_generation SET n = n + 1 WHERE id = 1;
END;
CREATE TRIGGER policy_accounts_delete AFTER DELETE ON accounts BEGIN
    UPDATE policy_generation SET n = n + 1 WHERE id = 1;
END;
CREATE TRIGGER policy_api_keys_insert AFTER INSERT ON api_keys BEGIN
    UPDATE policy_generation SET n = n + 1 WHERE id = 1;
END;
CREATE TRIGGER policy_api_keys_update AFTER UPDATE OF account_id, scopes, secret_hash, revoked_at ON api_keys BEGIN
    UPDATE policy_generation SET n = n + 1 WHERE id = 1;
END;
CREATE TRIGGER policy_api_keys_delete AFTER DELETE ON api_keys BEGIN
    UPDATE policy_generation SET n = n + 1 WHERE id = 1;
END;
CREATE TRIGGER policy_identities_insert AFTER INSERT ON identities BEGIN
    UPDATE policy_generation SET n = n + 1 WHERE id = 1;
END;
CREATE TRIGGER policy_identities_update AFTER UPDATE OF account_id, kind, value, status ON identities BEGIN
    UPDATE policy_generation SET n = n + 1 WHERE id = 1;
END;
CREATE TRIGGER policy_identities_delete AFTER DELETE ON identities BEGIN
    UPDATE policy_generation SET n = n + 1 WHERE id = 1;
END;
CREATE TRIGGER policy_templates_insert AFTER INSERT ON templates BEGIN
    UPDATE policy_generation SET n = n + 1 WHERE id = 1;
END;
CREATE TRIGGER policy_templates_update AFTER UPDATE ON templates BEGIN
    UPDATE policy_generation SET n = n + 1 WHERE id = 1;
END;
CREATE TRIGGER policy_templates_delete AFTER DELETE ON templates BEGIN
    UPDATE policy_generation SET n = n + 1 WHERE id = 1;
END;
