"""``/dashboard/messages``: search the account's messages (recipient, tag, status, date),
newest first with cursor paging; a message's page with each recipient's timeline (attempts and
SMTP replies, bounce diagnosis, opens and clicks), its headers and parts, and cancel."""

from __future__ import annotations

import base64
import binascii
import urllib.parse
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.responses import Response

from relaygate.dashboard.web import PREFIX, Ctx
from relaygate.errors import RequestError
from relaygate.gateway.http import MESSAGE_STATES
from relaygate.idn import address_key
from relaygate.manage import messages as manage_messages
from relaygate.store.states import message_state

PAGE = 50

#: What a timeline entry says, by event type.
EVENT_TEXT = {
    "queued": "accepted",
    "claimed": "handed to the relay",
    "delivery": "delivered",
    "deferred": "deferred (will retry)",
    "bounce": "bounced",
    "complaint": "complaint",
    "open": "opened",
    "click": "clicked",
    "held": "held",
    "released": "released",
    "cancelled": "cancelled",
    "lease_lost": "lease lost (put back in the queue)",
}


def _day(text: str, field: str) -> float | None:
    if not text:
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC).timestamp()
    except ValueError:
        raise RequestError(400, f"{field} must be a date like 2026-05-19") from None


def encode_cursor(created_at: float, message_id: str) -> str:
    return base64.urlsafe_b64encode(f"{created_at!r}|{message_id}".encode()).decode().rstrip("=")


def decode_cursor(text: str) -> tuple[float, str]:
    try:
        created, _, mid = base64.urlsafe_b64decode(text + "==").decode().partition("|")
        return float(created), mid
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise RequestError(400, "That page link is broken; start from the newest.") from None


def search(ctx: Ctx) -> Response:
    account = ctx.need_account()
    q = {k: ctx.query(k, limit=320) for k in ("recipient", "tag", "status", "since", "until")}
    if q["status"] and q["status"] not in MESSAGE_STATES:
        raise RequestError(400, f"status must be one of {', '.join(MESSAGE_STATES)}")
    since = _day(q["since"], "since")
    until = _day(q["until"], "until")
    before: tuple[float, str] | None = None
    if until is not None:
        before = ((datetime.fromtimestamp(until, UTC) + timedelta(days=1)).timestamp(), "")
    cursor = ctx.query("cursor", limit=200)
    if cursor:
        before = decode_cursor(cursor)
    recipient = None
    if q["recipient"]:
        try:
            recipient = address_key(q["recipient"])
        except ValueError:
            recipient = q["recipient"].lower()
    rows = ctx.store.messages.search(
        account.id,
        tag=q["tag"] or None,
        status=q["status"] or None,
        recipient=recipient,
        since=since,
        limit=PAGE,
        before=before,
    )
    following = None
    if len(rows) == PAGE:
        kept = {k: v for k, v in q.items() if v}
        kept["cursor"] = encode_cursor(rows[-1].created_at, rows[-1].id)
        following = f"{PREFIX}/messages?{urllib.parse.urlencode(kept)}"
    return ctx.render(
        "messages.html",
        rows=[(m, message_state(m.states)) for m in rows],
        q=q,
        states=MESSAGE_STATES,
        following=following,
        paged=bool(cursor),
        filtered=any(q.values()),
    )


def _timeline_entry(e: Any) -> dict[str, Any]:
    data = e.data or {}
    detail = []
    if data.get("smtp_response"):
        detail.append(("reply", data["smtp_response"]))
    for key in ("bounce_type", "reason", "status", "diagnostic", "remote_mta", "url", "ip"):
        value = data.get(key)
        if value and not (key == "diagnostic" and value == data.get("smtp_response")):
            detail.append((key.replace("_", " "), value))
    if data.get("user_agent"):
        detail.append(("user agent", data["user_agent"]))
    if data.get("is_proxy"):
        detail.append(("note", "a mail-privacy proxy, not counted as a person"))
    if data.get("is_scanner"):
        detail.append(("note", "a link scanner, not counted as a person"))
    return {
        "type": e.type,
        "text": EVENT_TEXT.get(e.type, e.type),
        "state": e.state_to or "",
        "at": e.created_at,
        "detail": detail,
    }


def show(ctx: Ctx, *, status: int = 200, error: str = "") -> Response:
    account = ctx.need_account()
    message_id = ctx.request.path_params["message_id"]
    found = (
        ctx.store.messages.get(message_id, account_id=account.id)
        if len(message_id) <= 100
        else None
    )
    if found is None:
        raise RequestError(404, "There is no such message in this account.")
    recipients = [
        {
            **r,
            "state": "queued" if r["state"] == "active" else r["state"],
            "timeline": [_timeline_entry(e) for e in r["events"]],
        }
        for r in found["recipients"]
    ]
    content = _content(ctx, message_id)
    cancellable = any(r["state"] in ("queued", "deferred", "held") for r in found["recipients"])
    return ctx.render(
        "message.html",
        status=status,
        error=error,
        m=found,
        overall=message_state([r["state"] for r in found["recipients"]]),
        recipients=recipients,
        content=content,
        cancellable=cancellable,
    )


def _content(ctx: Ctx, message_id: str) -> dict[str, Any] | None:
    return manage_messages.message_content(ctx.store, ctx.actor(), message_id)


def cancel(ctx: Ctx) -> Response:
    message_id = ctx.request.path_params["message_id"]
    manage_messages.cancel_message(ctx.store, ctx.actor(), message_id)
    return ctx.redirect(f"{PREFIX}/messages/{urllib.parse.quote(message_id)}", notice="cancelled")
