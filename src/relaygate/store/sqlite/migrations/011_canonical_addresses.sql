-- relaygate schema 11: identities and suppressions in the one canonical form of relaygate.idn
-- (A-label domains; two spellings of one address merged, the stricter entry kept). The rewrite
-- needs IDNA, so it is done in Python: relaygate.store.sqlite.idnfix.canonical_addresses, which
-- db.migrate runs in this migration's transaction.
UPDATE policy_generation SET n = n + 1 WHERE id = 1;
