-- relaygate schema 14: the webhook attempt log keeps what the endpoint answered (the first 512
-- bytes of its response, as text) and, for a failed attempt, when the next try is due.
ALTER TABLE webhook_attempts ADD COLUMN response TEXT NOT NULL DEFAULT '';
ALTER TABLE webhook_attempts ADD COLUMN next_attempt_at REAL;
