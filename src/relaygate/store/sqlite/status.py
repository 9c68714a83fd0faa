"""Read-only queries behind ``relaygate status`` and ``/metrics``: queue shape, recent outcome
counts, oldest pending recipient, failing webhook endpoints, sending domains that are not
verified; the backlog, and running totals read after a cursor.

``totals`` relies on rows that are never updated and ids that grow in commit order (one writer
at a time): events, webhook attempts, and messages by rowid. Each read is bounded by the largest
id committed when it starts, so a chain of cursors counts every row exactly once.

Every method only reads; none of them holds a write
lock, so ``status`` is safe to run against a busy live store. The events table has no index on
``created_at``: since event ids grow with time, the start of a window is found by a binary search
over ids (a handful of primary-key lookups), and only the tail after it is scanned.
"""

from __future__ import annotations

from collections.abc import Sequence

from relaygate.store.models import (
    Backlog,
    DomainQueue,
    FailingWebhook,
    Totals,
    TotalsCursor,
    UnverifiedDomain,
)
from relaygate.store.sqlite.core import Concern
from relaygate.store.states import OUTCOMES, PENDING_STATES

#: Outcome names counted in a window, from (event type, state_to).
_OUTCOME_FOR_EVENT: dict[tuple[str, str | None], str] = {
    ("queued", "queued"): "accepted",
    ("delivery", "delivered"): "delivered",
    ("bounce", "bounced"): "bounced",
    ("bounce", "expired"): "expired",
    ("bounce", "suppressed"): "suppressed",
    ("deferred", "deferred"): "deferred",
    ("complaint", "complained"): "complained",
}


#: The data of a queued event, as admission writes it.
_HTTP, _SMTP = '{"channel":"http"}', '{"channel":"smtp"}'


class SqliteStatus(Concern):
    def queue_by_state(self) -> dict[str, int]:
        """Recipients in every state (all of them, including final states)."""
        return {
            str(r[0]): int(r[1])
            for r in self._read("SELECT state, COUNT(*) FROM recipients GROUP BY state")
        }

    def queue_by_domain(self, *, limit: int = 10) -> list[DomainQueue]:
        """The ``limit`` destination domains with the most pending recipients, largest first."""
        marks = ",".join("?" * len(PENDING_STATES))
        rows = self._read(
            f"SELECT domain, state, COUNT(*), MIN(queued_at) FROM recipients WHERE state IN ({marks})"
            " GROUP BY domain, state",
            PENDING_STATES,
        )
        found: dict[str, dict[str, int]] = {}
        oldest: dict[str, float] = {}
        for domain, state, count, first in rows:
            found.setdefault(domain, {})[state] = int(count)
            oldest[domain] = min(oldest.get(domain, first), first)
        ranked = sorted(found.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))[:limit]
        return [
            DomainQueue(
                domain=domain,
                total=sum(states.values()),
                by_state=states,
                oldest_queued_at=oldest[domain],
            )
            for domain, states in ranked
        ]

    def oldest_pending(self) -> tuple[float, str, str] | None:
        """(queued_at, message id, state) of the oldest recipient not yet in a final state."""
        marks = ",".join("?" * len(PENDING_STATES))
        rows = self._read(
            f"SELECT queued_at, message_id, state FROM recipients WHERE state IN ({marks})"
            " ORDER BY queued_at, id LIMIT 1",
            PENDING_STATES,
        )
        if not rows:
            return None
        return float(rows[0][0]), str(rows[0][1]), str(rows[0][2])

    def first_event_since(self, since: float) -> int:
        """The smallest event id whose ``created_at`` is at or after ``since`` (binary search on ids)."""
        bounds = self._read("SELECT MIN(id), MAX(id) FROM events")
        lo, hi = bounds[0][0], bounds[0][1]
        if lo is None:
            return 0
        hi += 1
        while lo < hi:
            mid = (lo + hi) // 2
            row = self._read(
                "SELECT id, created_at FROM events WHERE id >= ? ORDER BY id LIMIT 1", (mid,)
            )
            if not row:
                hi = mid
            elif row[0][1] < since:
                lo = int(row[0][0]) + 1
            else:
                hi = mid
        return int(lo)

    def outcome_counts(self, *, since: float) -> dict[str, int]:
        """How many recipients were accepted, delivered, deferred, bounced … since ``since``."""
        start = self.first_event_since(since)
        rows = self._read(
            "SELECT type, state_to, COUNT(*) FROM events WHERE id >= ? AND created_at >= ?"
            " AND type IN ('queued', 'delivery', 'bounce', 'deferred', 'complaint')"
            " GROUP BY type, state_to",
            (start, since),
        )
        counts = dict.fromkeys(OUTCOMES, 0)
        for type_, state_to, count in rows:
            name = _OUTCOME_FOR_EVENT.get((type_, state_to))
            if name is not None:
                counts[name] += int(count)
        return counts

    def failing_webhooks(self, *, since: float) -> list[FailingWebhook]:
        """Live endpoints with a failed attempt since ``since`` or with abandoned deliveries."""
        rows = self._read(
            "SELECT w.id, w.account_id, w.url,"
            " (SELECT COUNT(*) FROM webhook_attempts a JOIN webhook_deliveries d ON d.id = a.delivery_id"
            "   WHERE d.webhook_id = w.id AND a.at >= ? AND a.outcome != 'ok') AS failed,"
            " (SELECT COUNT(*) FROM webhook_attempts a JOIN webhook_deliveries d ON d.id = a.delivery_id"
            "   WHERE d.webhook_id = w.id AND a.at >= ? AND a.outcome = 'ok') AS ok,"
            " (SELECT COUNT(*) FROM webhook_deliveries d WHERE d.webhook_id = w.id AND d.state = 'abandoned') AS abandoned,"
            " (SELECT COUNT(*) FROM webhook_deliveries d WHERE d.webhook_id = w.id AND d.state IN ('pending', 'active')) AS pending,"
            " (SELECT MAX(a.at) FROM webhook_attempts a JOIN webhook_deliveries d ON d.id = a.delivery_id"
            "   WHERE d.webhook_id = w.id AND a.outcome = 'ok') AS last_ok"
            " FROM webhooks w WHERE w.removed_at IS NULL ORDER BY w.created_at, w.id",
            (since, since),
        )
        out: list[FailingWebhook] = []
        for r in rows:
            if not r["failed"] and not r["abandoned"]:
                continue
            last = self._read(
                "SELECT a.at, a.outcome, a.status, a.error FROM webhook_attempts a"
                " JOIN webhook_deliveries d ON d.id = a.delivery_id"
                " WHERE d.webhook_id = ? AND a.outcome != 'ok' ORDER BY a.id DESC LIMIT 1",
                (r["id"],),
            )
            error = ""
            if last:
                status = f"HTTP {last[0]['status']}: " if last[0]["status"] is not None else ""
                error = f"{last[0]['outcome']}: {status}{last[0]['error']}".rstrip(": ")
            out.append(
                FailingWebhook(
                    id=r["id"],
                    account_id=r["account_id"],
                    url=r["url"],
                    failed_attempts=int(r["failed"]),
                    ok_attempts=int(r["ok"]),
                    abandoned=int(r["abandoned"]),
                    pending=int(r["pending"]),
                    last_failure_at=float(last[0]["at"]) if last else None,
                    last_error=error[:200],
                    last_success_at=r["last_ok"],
                )
            )
        return out

    def unverified_domains(self) -> list[UnverifiedDomain]:
        """Domain identities that are not verified: failed, at_risk, an asserted one whose records
        a check did not find, pending; in that order."""
        rows = self._read(
            "SELECT account_id, value, status, status_reason, failing_since, last_checked_at"
            " FROM identities WHERE kind = 'domain' AND status != 'verified'"
            " AND NOT (status = 'asserted' AND failing_since IS NULL)"
            " ORDER BY CASE status WHEN 'failed' THEN 0 WHEN 'at_risk' THEN 1"
            " WHEN 'asserted' THEN 2 ELSE 3 END, value, account_id"
        )
        return [
            UnverifiedDomain(
                account_id=r[0],
                domain=r[1],
                status=r[2],
                reason=r[3],
                failing_since=r[4],
                last_checked_at=r[5],
            )
            for r in rows
        ]

    def backlog(self, account_id: int | None = None) -> Backlog:
        marks = ",".join("?" * len(PENDING_STATES))
        # INDEXED BY: only the pending rows are read, also for one account (whose recipients,
        # by the account's index, would be all it ever sent)
        mine = "" if account_id is None else " AND account_id = ?"
        extra: tuple[int, ...] = () if account_id is None else (account_id,)
        recipients = self._read(
            f"SELECT state, COUNT(*) FROM recipients INDEXED BY recipients_due"
            f" WHERE state IN ({marks}){mine} GROUP BY state",
            (*PENDING_STATES, *extra),
        )
        oldest = self._read(
            "SELECT MIN(queued_at) FROM recipients INDEXED BY recipients_due"
            f" WHERE state IN ('queued', 'deferred', 'active'){mine}",
            extra,
        )
        hooks = self._read(
            "SELECT state, COUNT(*) FROM webhook_deliveries INDEXED BY webhook_deliveries_due"
            f" WHERE state IN ('pending', 'active', 'abandoned'){mine} GROUP BY state",
            extra,
        )
        return Backlog(
            recipients={str(r[0]): int(r[1]) for r in recipients},
            oldest_queued_at=oldest[0][0] if oldest and oldest[0][0] is not None else None,
            webhook_deliveries={str(r[0]): int(r[1]) for r in hooks},
        )

    def totals(self, after: TotalsCursor | None, *, latency_buckets: Sequence[float]) -> Totals:
        after = after or TotalsCursor()
        ends = self._read(
            "SELECT (SELECT COALESCE(MAX(id), 0) FROM events),"
            " (SELECT COALESCE(MAX(rowid), 0) FROM messages),"
            " (SELECT COALESCE(MAX(id), 0) FROM webhook_attempts)"
        )[0]
        cursor = TotalsCursor(
            event_id=max(after.event_id, int(ends[0])),
            message_row=max(after.message_row, int(ends[1])),
            attempt_id=max(after.attempt_id, int(ends[2])),
        )
        events = (after.event_id, cursor.event_id)
        messages = {
            str(r[0]): int(r[1])
            for r in self._read(
                "SELECT channel, COUNT(*) FROM messages WHERE rowid > ? AND rowid <= ?"
                " GROUP BY channel",
                (after.message_row, cursor.message_row),
            )
        }
        # One pass over the new events for the plain counts; admission writes a queued event's
        # data as exactly {"channel":"http"} or {"channel":"smtp"} (anything else is parsed).
        sums = self._read(
            "SELECT COALESCE(SUM(type = 'queued' AND state_from IS NULL AND data = ?), 0),"
            " COALESCE(SUM(type = 'queued' AND state_from IS NULL AND data = ?), 0),"
            " COALESCE(SUM(type = 'queued' AND state_from IS NULL), 0),"
            " COALESCE(SUM(type = 'delivery' AND state_to = 'delivered'), 0),"
            " COALESCE(SUM(type = 'deferred' AND state_to = 'deferred'), 0),"
            " COALESCE(SUM(type = 'bounce' AND state_to = 'expired'), 0),"
            " COALESCE(SUM(type = 'complaint' AND state_to = 'complained'), 0)"
            " FROM events WHERE id > ? AND id <= ?",
            (_HTTP, _SMTP, *events),
        )[0]
        http, smtp, queued, delivered, deferred, expired, complained = (int(v) for v in sums)
        accepted = {k: v for k, v in (("http", http), ("smtp", smtp)) if v}
        if queued > http + smtp:
            for channel, n in self._read(
                "SELECT json_extract(data, '$.channel'), COUNT(*) FROM events"
                " WHERE id > ? AND id <= ? AND type = 'queued' AND state_from IS NULL"
                " AND data NOT IN (?, ?) GROUP BY 1",
                (*events, _HTTP, _SMTP),
            ):
                accepted[str(channel)] = accepted.get(str(channel), 0) + int(n)
        bounced: dict[tuple[str, str], int] = {}
        for btype, reason, n in self._read(
            "SELECT json_extract(data, '$.bounce_type'), json_extract(data, '$.reason'), COUNT(*)"
            " FROM events WHERE id > ? AND id <= ? AND type = 'bounce'"
            " AND state_to IN ('bounced', 'suppressed') GROUP BY 1, 2",
            events,
        ):
            key = (str(btype or "hard"), str(reason or "other"))
            bounced[key] = bounced.get(key, 0) + int(n)
        for channel, n in self._read(  # suppressed at admission: accepted, then bounced
            "SELECT m.channel, COUNT(*) FROM events e JOIN messages m ON m.id = e.message_id"
            " WHERE e.id > ? AND e.id <= ? AND e.type = 'bounce' AND e.state_from IS NULL"
            " AND e.state_to = 'suppressed' GROUP BY m.channel",
            events,
        ):
            accepted[str(channel)] = accepted.get(str(channel), 0) + int(n)
        bounds = list(latency_buckets)
        row = self._read(
            "SELECT COUNT(*), COALESCE(SUM(lat), 0)"
            + "".join(", COALESCE(SUM(lat <= ?), 0)" for _ in bounds)
            + " FROM (SELECT MAX(e.created_at - r.queued_at, 0) AS lat FROM events e"
            " JOIN recipients r ON r.id = e.recipient_id"
            " WHERE e.id > ? AND e.id <= ? AND e.type = 'delivery' AND e.state_to = 'delivered')",
            (*bounds, *events),
        )[0]
        cumulative = [int(v) for v in row[2:]] + [int(row[0])]
        latency = tuple(c - (cumulative[i - 1] if i else 0) for i, c in enumerate(cumulative))
        attempts: dict[str, int] = {}
        failures: dict[str, int] = {}
        for event_type, ok, n in self._read(
            "SELECT d.event_type, a.outcome = 'ok', COUNT(*) FROM webhook_attempts a"
            " JOIN webhook_deliveries d ON d.id = a.delivery_id"
            " WHERE a.id > ? AND a.id <= ? GROUP BY 1, 2",
            (after.attempt_id, cursor.attempt_id),
        ):
            attempts[str(event_type)] = attempts.get(str(event_type), 0) + int(n)
            if not ok:
                failures[str(event_type)] = failures.get(str(event_type), 0) + int(n)
        return Totals(
            cursor=cursor,
            messages_accepted=messages,
            recipients_accepted=accepted,
            delivered=delivered,
            deferred=deferred,
            bounced=bounced,
            expired=expired,
            complained=complained,
            latency=latency,
            latency_sum=float(row[1]),
            webhook_attempts=attempts,
            webhook_failures=failures,
        )
