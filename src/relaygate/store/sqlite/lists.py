"""Account templates and the suppression list (SQLite)."""

from __future__ import annotations

from collections.abc import Sequence

from relaygate.store.models import Suppression, Template, TemplateInfo
from relaygate.store.sqlite.core import Concern
from relaygate.store.sqlite.policycache import MISS
from relaygate.store.sqlite.rows import add_suppression, suppressed_sql


class SqliteTemplates(Concern):
    def get(self, account_id: int, slug: str) -> Template | None:
        key = ("template", account_id, slug)
        found, token = self.policy.get(key)
        if found is not MISS:
            return found  # type: ignore[no-any-return]
        rows = self._read(
            "SELECT * FROM templates WHERE account_id = ? AND slug = ?", (account_id, slug)
        )
        template = None
        if rows:
            r = rows[0]
            template = Template(
                slug=r["slug"], subject=r["subject"], html=r["html"], text=r["text"]
            )
        self.policy.put(key, template, token)
        return template

    def all(self, account_id: int) -> list[TemplateInfo]:
        rows = self._read(
            "SELECT slug, source, created_at, updated_at FROM templates WHERE account_id = ? ORDER BY slug",
            (account_id,),
        )
        return [
            TemplateInfo(
                slug=r["slug"],
                source=r["source"],
                created_at=r["created_at"],
                updated_at=r["updated_at"],
            )
            for r in rows
        ]

    def save(self, account_id: int, template: Template, *, source: str = "created") -> None:
        now = self.clock.now()
        self._write(
            lambda c: c.execute(
                "INSERT INTO templates (account_id, slug, subject, html, text, source, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (account_id, slug) DO UPDATE SET subject = excluded.subject, html = excluded.html, text = excluded.text,"
                " source = excluded.source, updated_at = excluded.updated_at",
                (
                    account_id,
                    template.slug,
                    template.subject,
                    template.html,
                    template.text,
                    source,
                    now,
                    now,
                ),
            )
        )

    def delete(self, account_id: int, slug: str) -> bool:
        return bool(
            self._write(
                lambda c: (
                    c.execute(
                        "DELETE FROM templates WHERE account_id = ? AND slug = ?",
                        (account_id, slug),
                    ).rowcount
                )
            )
        )


class SqliteSuppressions(Concern):
    def lookup(self, account_id: int, addresses: Sequence[str]) -> dict[str, str]:
        """The subset of ``addresses`` on the account's (unexpired) suppression list → reason."""
        if not addresses:
            return {}
        lowered = [a.lower() for a in addresses]
        rows = self._read(suppressed_sql(len(lowered)), (account_id, *lowered, self.clock.now()))
        return {r[0]: r[1] for r in rows}

    def add(
        self,
        account_id: int,
        address: str,
        *,
        reason: str,
        source: str,
        bounce_type: str = "hard",
        event_id: int | None = None,
        expires_at: float | None = None,
    ) -> None:
        now = self.clock.now()
        self._write(
            lambda c: add_suppression(
                c,
                account_id=account_id,
                address=address,
                reason=reason,
                source=source,
                bounce_type=bounce_type,
                event_id=event_id,
                now=now,
                expires_at=expires_at,
            )
        )

    def remove(self, account_id: int, address: str) -> bool:
        return bool(
            self._write(
                lambda c: (
                    c.execute(
                        "DELETE FROM suppressions WHERE account_id = ? AND address = ?",
                        (account_id, address.lower()),
                    ).rowcount
                )
            )
        )

    def all(
        self, account_id: int | None = None, *, limit: int = 1000, after: str = ""
    ) -> list[Suppression]:
        if account_id is None:
            rows = self._read(
                "SELECT * FROM suppressions WHERE address > ? ORDER BY account_id, address LIMIT ?",
                (after, limit),
            )
        else:
            rows = self._read(
                "SELECT * FROM suppressions WHERE account_id = ? AND address > ? ORDER BY address LIMIT ?",
                (account_id, after, limit),
            )
        return [
            Suppression(
                account_id=r["account_id"],
                address=r["address"],
                reason=r["reason"],
                bounce_type=r["bounce_type"],
                source=r["source"],
                event_id=r["event_id"],
                created_at=r["created_at"],
                expires_at=r["expires_at"],
            )
            for r in rows
        ]
