"""Webhook actions: register (the secret is shown once), read, change the URL or the event
types, remove, rotate the secret, the attempt log, and replay (chosen attempts' deliveries, or
every abandoned one). ``relaygate.events.endpoints`` checks URLs (no private targets unless
configured); this adds the actor's scope, the account and the audit log. Another account's
webhook, or a removed one, is ``NotFound``."""

from __future__ import annotations

from typing import Any

from relaygate.errors import Conflict, Invalid, NotFound, RequestError
from relaygate.events import endpoints
from relaygate.events.signing import new_secret
from relaygate.manage import fields
from relaygate.manage.actor import Actor
from relaygate.manage.audit import record
from relaygate.settings import Settings
from relaygate.store.api import Store
from relaygate.store.ids import delivery_ref
from relaygate.store.models import Attempt, Webhook
from relaygate.store.states import WEBHOOK_EVENT_TYPES

MAX_URL = 2000
MAX_PAGE = 200


def _events(value: object) -> list[str]:
    events = fields.strings(value, "events", max_items=len(WEBHOOK_EVENT_TYPES) * 2)
    bad = sorted(set(events) - set(WEBHOOK_EVENT_TYPES))
    if bad:
        raise Invalid(
            "events",
            f"events: unknown {', '.join(bad)}; types are {', '.join(WEBHOOK_EVENT_TYPES)}",
        )
    return events


def _url(store: Store, settings: Settings, value: object) -> tuple[str, list[str]]:
    url = fields.text(value, "url", required=True, max_len=MAX_URL)
    try:
        return endpoints.check_target(url, settings)
    except RequestError as exc:
        raise Invalid("url", f"url: {exc.detail}") from None


def get_webhook(store: Store, actor: Actor, webhook_id: str) -> Webhook:
    """A live webhook of the actor's account."""
    actor.require()
    found = (
        store.webhooks.get(webhook_id)
        if isinstance(webhook_id, str) and len(webhook_id) < 100
        else None
    )
    if found is None or found.account_id != actor.account_id or found.removed_at is not None:
        raise NotFound(f"no webhook {str(webhook_id)[:100]}")
    return found


def list_webhooks(store: Store, actor: Actor) -> list[Webhook]:
    actor.require()
    return store.webhooks.all(account_id=actor.account_id)


def create_webhook(
    store: Store, settings: Settings, actor: Actor, url: object, events: object = None
) -> endpoints.Registered:
    """A new endpoint for ``events`` (all when empty) and its secret, shown this once."""
    actor.require()
    checked, warnings = _url(store, settings, url)
    wanted = _events(events)
    secret = new_secret()
    webhook = store.webhooks.create(
        account_id=actor.account_id, url=checked, events=wanted, secret=secret
    )
    record(store, actor, "webhook.create", webhook.id, {"url": checked, "events": wanted})
    return endpoints.Registered(webhook=webhook, secret=secret, warnings=tuple(warnings))


def update_webhook(
    store: Store,
    settings: Settings,
    actor: Actor,
    webhook_id: str,
    *,
    url: object = None,
    events: object = None,
) -> Webhook:
    """Change the URL and/or the event types (``None``: unchanged; ``[]``: all types)."""
    get_webhook(store, actor, webhook_id)
    checked = _url(store, settings, url)[0] if url is not None else None
    wanted = _events(events) if events is not None else None
    changed = store.webhooks.update(webhook_id, url=checked, events=wanted)
    if changed is None:
        raise NotFound(f"no webhook {webhook_id}")
    detail: dict[str, Any] = {}
    if checked is not None:
        detail["url"] = checked
    if wanted is not None:
        detail["events"] = wanted
    record(store, actor, "webhook.update", webhook_id, detail)
    return changed


def delete_webhook(store: Store, actor: Actor, webhook_id: str) -> str:
    """Stop the endpoint: no new deliveries; its pending ones are abandoned."""
    get_webhook(store, actor, webhook_id)
    store.webhooks.remove(webhook_id)
    record(store, actor, "webhook.delete", webhook_id)
    return webhook_id


def rotate_secret(
    store: Store, actor: Actor, webhook_id: str, grace: object = None
) -> tuple[Webhook, str]:
    """A new secret, shown this once; the old one keeps signing for ``grace`` seconds
    (default one day)."""
    get_webhook(store, actor, webhook_id)
    seconds = fields.integer(
        grace, "grace", default=int(endpoints.DEFAULT_GRACE), low=0, high=30 * 86400
    )
    try:
        webhook, secret = endpoints.rotate_secret(store, webhook_id, grace=float(seconds))
    except RequestError as exc:
        raise Conflict(exc.detail) from None
    record(store, actor, "webhook.rotate_secret", webhook_id, {"grace": seconds})
    return webhook, secret


def list_attempts(
    store: Store, actor: Actor, webhook_id: str, *, limit: int = 50, cursor: str | None = None
) -> tuple[list[Attempt], str | None]:
    """The webhook's attempts, newest first, and the next page's cursor (None at the end)."""
    get_webhook(store, actor, webhook_id)
    if not 1 <= limit <= MAX_PAGE:
        raise Invalid("limit", f"limit must be an integer from 1 to {MAX_PAGE}")
    before = None
    if cursor:
        if not cursor.isdigit() or len(cursor) > 18:
            raise Invalid("cursor", "cursor is not valid")
        before = int(cursor)
    found = store.webhooks.recent_attempts(webhook_id, limit=limit, before=before)
    following = str(found[-1].id) if len(found) == limit else None
    return found, following


def replay(
    store: Store,
    actor: Actor,
    webhook_id: str,
    *,
    attempt_ids: object = None,
    status: object = None,
) -> list[int]:
    """Make deliveries due again: those of the chosen attempts (each must be finished:
    succeeded or abandoned), or with ``status="abandoned"`` every abandoned one of the
    webhook. Returns the delivery ids replayed (all or nothing for chosen attempts)."""
    get_webhook(store, actor, webhook_id)
    if (attempt_ids is None) == (status is None):
        raise Invalid("attempt_ids", 'give either attempt_ids or status: "abandoned"')
    if status is not None:
        if status != "abandoned":
            raise Invalid("status", 'status must be "abandoned"')
        abandoned = [
            d.id
            for d in store.webhooks.deliveries(
                webhook_id=webhook_id, state="abandoned", limit=100_000
            )
        ]
        store.webhooks.replay_abandoned(webhook_id=webhook_id)
        record(
            store,
            actor,
            "webhook.replay",
            webhook_id,
            {"status": "abandoned", "count": len(abandoned)},
        )
        return abandoned
    if not isinstance(attempt_ids, list) or not attempt_ids or len(attempt_ids) > 1000:
        raise Invalid("attempt_ids", "attempt_ids must be a list of 1 to 1000 attempt ids")
    deliveries: list[int] = []
    for item in attempt_ids:
        if isinstance(item, bool) or not isinstance(item, int):
            raise Invalid("attempt_ids", "attempt_ids must be a list of attempt ids (integers)")
        attempt = store.webhooks.attempt(item)
        delivery = store.webhooks.delivery(attempt.delivery_id) if attempt else None
        if delivery is None or delivery.webhook_id != webhook_id:
            raise NotFound(f"webhook {webhook_id} has no attempt {item}")
        if delivery.state not in ("succeeded", "abandoned"):
            raise Conflict(
                f"attempt {item}: its delivery {delivery_ref(delivery.id)} is {delivery.state};"
                " only finished deliveries are replayed"
            )
        if delivery.id not in deliveries:
            deliveries.append(delivery.id)
    for delivery_id in deliveries:
        store.webhooks.replay(delivery_id)
    record(
        store,
        actor,
        "webhook.replay",
        webhook_id,
        {"attempt_ids": list(attempt_ids), "deliveries": [delivery_ref(d) for d in deliveries]},
    )
    return deliveries


def webhook_json(w: Webhook) -> dict[str, Any]:
    """An endpoint as the API shows it (never its secret)."""
    data = endpoints.webhook_dict(w)
    data.pop("removed", None)
    return data


def attempt_json(a: Attempt) -> dict[str, Any]:
    """One attempt of the log (the command line's ``webhook attempts --json`` shape)."""
    return endpoints.attempt_dict(a)
