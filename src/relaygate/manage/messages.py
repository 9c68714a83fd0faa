"""Message actions: cancel what is not yet delivered, and show a message's content as sent
(headers, and each part's type, size and, for text parts, text)."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from relaygate.errors import NotFound
from relaygate.manage.actor import Actor
from relaygate.manage.audit import record
from relaygate.store.api import Store

#: Characters of a text part's text shown at most (the size says how large it is).
MAX_TEXT = 1_000_000


def _message(store: Store, actor: Actor, message_id: str) -> dict[str, Any]:
    found = (
        store.messages.get(message_id, account_id=actor.account_id)
        if isinstance(message_id, str) and len(message_id) <= 100
        else None
    )
    if found is None:
        raise NotFound("message not found")
    return found


def cancel_message(store: Store, actor: Actor, message_id: str) -> tuple[int, dict[str, Any]]:
    """Cancel the recipients that are queued, deferred or held (a transaction in flight
    finishes; delivered ones stay delivered). Returns how many, and the message after."""
    actor.require()
    _message(store, actor, message_id)
    count = store.queue.cancel(message_id, account_id=actor.account_id)
    record(store, actor, "message.cancel", message_id, {"cancelled": count})
    return count, _message(store, actor, message_id)


def message_content(store: Store, actor: Actor, message_id: str) -> dict[str, Any]:
    """``{id, size, headers: [[name, value]…], parts: [{type, size, filename, charset, text}…]}``
    of the message as stored (before per-recipient tracking and signing)."""
    actor.require()
    _message(store, actor, message_id)
    raw = store.messages.body(message_id)
    parsed = message_from_bytes(raw, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return {
        "id": message_id,
        "size": len(raw),
        "headers": [[name, _header(value)] for name, value in parsed.items()],
        "parts": [_part(p) for p in parsed.walk() if not p.is_multipart()],
    }


def _header(value: Any) -> str:
    try:
        return str(value)
    except Exception:  # a malformed header the policy cannot fold: its raw text
        return repr(value)


def _part(part: Any) -> dict[str, Any]:
    try:
        payload = part.get_payload(decode=True) or b""
    except Exception:
        payload = b""
    data: dict[str, Any] = {
        "type": part.get_content_type(),
        "size": len(payload),
        "filename": part.get_filename(),
        "charset": part.get_content_charset(),
    }
    if part.get_content_maintype() == "text":
        charset = part.get_content_charset() or "utf-8"
        try:
            text = payload.decode(charset, errors="replace")
        except LookupError:
            text = payload.decode("utf-8", errors="replace")
        data["text"] = text[:MAX_TEXT]
    return data
