-- relaygate schema 15: usage per account and UTC day, counted in recipients, for
-- GET /v1/usage and the dashboard (API.md §11). Kept as daily counters by triggers on the
-- events table, in the transaction that writes each event, so reading 30 days is 30 rows
-- whatever the volume. What counts (each event type, once):
--   accepted    a recipient admitted to the queue (event 'queued')
--   suppressed  a recipient refused at admission for being suppressed ('bounce' → suppressed)
--   delivered   'delivery'
--   deferred    a recipient's first deferral ('deferred'; its later ones do not count again)
--   bounced     'bounce' other than suppressed (hard, soft, expired, a DSN after delivery)
--   complained  'complaint'
--   opened      a recipient's first human open ('open' with first = true: no proxy, no scanner)
--   clicked     a recipient's first human click ('click' with first = true)
CREATE TABLE usage_days (
    account_id  INTEGER NOT NULL,
    day         TEXT NOT NULL,
    accepted    INTEGER NOT NULL DEFAULT 0,
    delivered   INTEGER NOT NULL DEFAULT 0,
    deferred    INTEGER NOT NULL DEFAULT 0,
    bounced     INTEGER NOT NULL DEFAULT 0,
    complained  INTEGER NOT NULL DEFAULT 0,
    suppressed  INTEGER NOT NULL DEFAULT 0,
    opened      INTEGER NOT NULL DEFAULT 0,
    clicked     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (account_id, day)
);

CREATE TRIGGER usage_accepted AFTER INSERT ON events WHEN NEW.type = 'queued' BEGIN
    INSERT INTO usage_days (account_id, day, accepted)
    VALUES (NEW.account_id, strftime('%Y-%m-%d', NEW.created_at, 'unixepoch'), 1)
    ON CONFLICT (account_id, day) DO UPDATE SET accepted = accepted + 1;
END;
CREATE TRIGGER usage_delivered AFTER INSERT ON events WHEN NEW.type = 'delivery' BEGIN
    INSERT INTO usage_days (account_id, day, delivered)
    VALUES (NEW.account_id, strftime('%Y-%m-%d', NEW.created_at, 'unixepoch'), 1)
    ON CONFLICT (account_id, day) DO UPDATE SET delivered = delivered + 1;
END;
CREATE TRIGGER usage_deferred AFTER INSERT ON events WHEN NEW.type = 'deferred'
    AND NOT EXISTS (SELECT 1 FROM events e WHERE e.message_id = NEW.message_id
                    AND e.recipient_id = NEW.recipient_id AND e.type = 'deferred' AND e.id < NEW.id)
BEGIN
    INSERT INTO usage_days (account_id, day, deferred)
    VALUES (NEW.account_id, strftime('%Y-%m-%d', NEW.created_at, 'unixepoch'), 1)
    ON CONFLICT (account_id, day) DO UPDATE SET deferred = deferred + 1;
END;
CREATE TRIGGER usage_bounced AFTER INSERT ON events
    WHEN NEW.type = 'bounce' AND COALESCE(NEW.state_to, '') != 'suppressed' BEGIN
    INSERT INTO usage_days (account_id, day, bounced)
    VALUES (NEW.account_id, strftime('%Y-%m-%d', NEW.created_at, 'unixepoch'), 1)
    ON CONFLICT (account_id, day) DO UPDATE SET bounced = bounced + 1;
END;
CREATE TRIGGER usage_suppressed AFTER INSERT ON events
    WHEN NEW.type = 'bounce' AND NEW.state_to = 'suppressed' BEGIN
    INSERT INTO usage_days (account_id, day, suppressed)
    VALUES (NEW.account_id, strftime('%Y-%m-%d', NEW.created_at, 'unixepoch'), 1)
    ON CONFLICT (account_id, day) DO UPDATE SET suppressed = suppressed + 1;
END;
CREATE TRIGGER usage_complained AFTER INSERT ON events WHEN NEW.type = 'complaint' BEGIN
    INSERT INTO usage_days (account_id, day, complained)
    VALUES (NEW.account_id, strftime('%Y-%m-%d', NEW.created_at, 'unixepoch'), 1)
    ON CONFLICT (account_id, day) DO UPDATE SET complained = complained + 1;
END;
CREATE TRIGGER usage_opened AFTER INSERT ON events
    WHEN NEW.type = 'open' AND json_extract(NEW.data, '$.first') = 1
    AND json_extract(NEW.data, '$.is_proxy') = 0 AND json_extract(NEW.data, '$.is_scanner') = 0 BEGIN
    INSERT INTO usage_days (account_id, day, opened)
    VALUES (NEW.account_id, strftime('%Y-%m-%d', NEW.created_at, 'unixepoch'), 1)
    ON CONFLICT (account_id, day) DO UPDATE SET opened = opened + 1;
END;
CREATE TRIGGER usage_clicked AFTER INSERT ON events
    WHEN NEW.type = 'click' AND json_extract(NEW.data, '$.first') = 1
    AND json_extract(NEW.data, '$.is_proxy') = 0 AND json_extract(NEW.data, '$.is_scanner') = 0 BEGIN
    INSERT INTO usage_days (account_id, day, clicked)
    VALUES (NEW.account_id, strftime('%Y-%m-%d', NEW.created_at, 'unixepoch'), 1)
    ON CONFLICT (account_id, day) DO UPDATE SET clicked = clicked + 1;
END;

-- What happened before this schema, counted once from the events kept.
INSERT INTO usage_days (account_id, day, accepted, delivered, deferred, bounced, complained,
                        suppressed, opened, clicked)
SELECT account_id, strftime('%Y-%m-%d', created_at, 'unixepoch') AS day,
       SUM(type = 'queued'),
       SUM(type = 'delivery'),
       SUM(type = 'deferred' AND NOT EXISTS (SELECT 1 FROM events p WHERE p.message_id = events.message_id
           AND p.recipient_id = events.recipient_id AND p.type = 'deferred' AND p.id < events.id)),
       SUM(type = 'bounce' AND COALESCE(state_to, '') != 'suppressed'),
       SUM(type = 'complaint'),
       SUM(type = 'bounce' AND state_to = 'suppressed'),
       SUM(type = 'open' AND json_extract(data, '$.first') = 1
           AND json_extract(data, '$.is_proxy') = 0 AND json_extract(data, '$.is_scanner') = 0),
       SUM(type = 'click' AND json_extract(data, '$.first') = 1
           AND json_extract(data, '$.is_proxy') = 0 AND json_extract(data, '$.is_scanner') = 0)
  FROM events
 WHERE type IN ('queued', 'delivery', 'deferred', 'bounce', 'complaint', 'open', 'click')
 GROUP BY account_id, day;
