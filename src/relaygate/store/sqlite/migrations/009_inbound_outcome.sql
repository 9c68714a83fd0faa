-- relaygate schema 9: what became of each inbound report, and its bytes' retention.
-- status: pending → applied | ignored | unmatched | failed (see store/reports.py); reason says
-- why a report is unmatched; account_id is set only where a verified VERP token names the
-- message. size is the report's length as received (kept when its bytes are dropped);
-- purged_at is when retention dropped the bytes (data is then empty).
ALTER TABLE inbound ADD COLUMN status TEXT NOT NULL DEFAULT 'pending';
ALTER TABLE inbound ADD COLUMN reason TEXT NOT NULL DEFAULT '';
ALTER TABLE inbound ADD COLUMN kind TEXT NOT NULL DEFAULT '';
ALTER TABLE inbound ADD COLUMN processed_at REAL;
ALTER TABLE inbound ADD COLUMN account_id INTEGER;
ALTER TABLE inbound ADD COLUMN message_id TEXT;
ALTER TABLE inbound ADD COLUMN recipient_id INTEGER;
ALTER TABLE inbound ADD COLUMN size INTEGER NOT NULL DEFAULT 0;
ALTER TABLE inbound ADD COLUMN purged_at REAL;
UPDATE inbound SET size = length(data);
-- Rows processed before this version: those that left an inbound_unmatched event were
-- unmatched; the others were applied (by the rules of their day). They were processed within
-- seconds of arriving: received_at stands for processed_at.
UPDATE inbound SET
    status = CASE WHEN id IN (
        SELECT json_extract(events.data, '$.inbound_id') FROM events WHERE events.type = 'inbound_unmatched'
    ) THEN 'unmatched' ELSE 'applied' END,
    reason = CASE WHEN id IN (
        SELECT json_extract(events.data, '$.inbound_id') FROM events WHERE events.type = 'inbound_unmatched'
    ) THEN 'no_token' ELSE '' END,
    processed_at = received_at
WHERE processed = 1;
CREATE INDEX inbound_status ON inbound (status, received_at);
CREATE INDEX inbound_retention ON inbound (processed_at) WHERE purged_at IS NULL AND processed = 1;
