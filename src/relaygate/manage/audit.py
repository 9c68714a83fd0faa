"""The audit log: recording a management action, and reading the log (``GET /v1/audit``)."""

from __future__ import annotations

from typing import Any

from relaygate.clock import iso
from relaygate.errors import Invalid
from relaygate.manage.actor import Actor
from relaygate.store.api import Store
from relaygate.store.models import AuditEntry

MAX_PAGE = 200


def record(
    store: Store, actor: Actor, action: str, target: str, detail: dict[str, Any] | None = None
) -> AuditEntry:
    """Append what ``actor`` just did (called by every action after its change committed)."""
    return store.audit.append(
        actor.account_id,
        actor=actor.who,
        action=action,
        target=target,
        address=actor.address,
        detail=detail,
    )


def list_entries(
    store: Store, actor: Actor, *, limit: int = 50, cursor: str | None = None
) -> tuple[list[AuditEntry], str | None]:
    """The actor's account's entries, newest first, and the cursor of the next page (None at
    the end). ``cursor`` is the previous answer's ``next_cursor``."""
    actor.require()
    if not 1 <= limit <= MAX_PAGE:
        raise Invalid("limit", f"limit must be an integer from 1 to {MAX_PAGE}")
    before = None
    if cursor:
        if not cursor.isdigit() or len(cursor) > 18:
            raise Invalid("cursor", "cursor is not valid")
        before = int(cursor)
    entries = store.audit.list(actor.account_id, limit=limit, before=before)
    following = str(entries[-1].id) if len(entries) == limit else None
    return entries, following


def entry_json(entry: AuditEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "actor": entry.actor,
        "action": entry.action,
        "target": entry.target,
        "address": entry.address,
        "at": iso(entry.created_at),
        "detail": entry.detail,
    }
