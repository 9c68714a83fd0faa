"""Webhook endpoints as an account manages them: register, rotate the secret, replay deliveries.

The one code path for these actions, whoever asks (the command line today; the management API and
the dashboard call the same functions). Errors are ``RequestError`` (400 bad input, 404 not
found, 409 the endpoint's state forbids it) whose ``detail`` is safe to show.

Registration checks the URL with ``ssrf.validate_url`` and, for a host name, resolves it through
the configured resolver (``[dns] nameservers``) and refuses it when any address is forbidden.
``[webhooks] allow_private`` admits http and private/loopback targets (development). A DNS
failure at this point is only a warning (the name may not be published yet): every send checks
the addresses again, so a name that later resolves to a forbidden address is refused then.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from relaygate.clock import iso, iso_or_none
from relaygate.dnsresolver import make_resolver
from relaygate.errors import DeliveryDeferred, RequestError
from relaygate.events.signing import new_secret
from relaygate.events.ssrf import UnsafeTarget, resolve_and_check, validate_url
from relaygate.settings import Settings
from relaygate.store import Store
from relaygate.store.ids import delivery_ref
from relaygate.store.models import Attempt, Delivery, Webhook
from relaygate.store.states import WEBHOOK_EVENT_TYPES

#: How long a rotated-out secret keeps signing unless the caller says otherwise (seconds).
DEFAULT_GRACE = 24 * 3600.0


@dataclass(frozen=True, kw_only=True)
class Registered:
    """A new endpoint, its secret (shown once) and any warnings about its URL."""

    webhook: Webhook
    secret: str
    warnings: tuple[str, ...]


def webhook_dict(w: Webhook) -> dict[str, Any]:
    """An endpoint for output (never its secret)."""
    return {
        "id": w.id,
        "account_id": w.account_id,
        "url": w.url,
        "events": list(w.events) or list(WEBHOOK_EVENT_TYPES),
        "created_at": iso(w.created_at),
        "removed": w.removed_at is not None,
        "previous_secret_expires_at": iso_or_none(w.previous_secret_expires_at),
    }


def delivery_dict(d: Delivery) -> dict[str, Any]:
    """One event's delivery to one endpoint, for output."""
    return {
        "id": delivery_ref(d.id),
        "webhook_id": d.webhook_id,
        "event_id": d.event_id,
        "event_type": d.event_type,
        "message_id": d.message_id,
        "state": d.state,
        "attempts": d.attempts,
        "next_attempt_at": iso_or_none(d.next_attempt_at),
        "last_status": d.last_status,
        "last_error": d.last_error,
        "replays": d.replays,
    }


def attempt_dict(a: Attempt) -> dict[str, Any]:
    """One POST of a delivery, for output: when, the HTTP status, the error, the first 512
    bytes of the response, and when the next try is due (None: succeeded or abandoned)."""
    return {
        "id": a.id,
        "delivery_id": delivery_ref(a.delivery_id),
        "attempt": a.attempt,
        "at": iso(a.at),
        "status": a.status,
        "outcome": a.outcome,
        "error": a.error,
        "duration_ms": a.duration_ms,
        "response": a.response,
        "next_attempt_at": iso_or_none(a.next_attempt_at),
    }


def check_target(url: str, settings: Settings) -> tuple[str, list[str]]:
    """The normalised URL and any warnings; raises ``RequestError(400)`` when it is refused."""
    private = settings.webhooks.allow_private
    try:
        target = validate_url(url, allow_private=private, allow_http=private)
    except UnsafeTarget as exc:
        raise RequestError(400, f"refused webhook URL: {exc.reason}") from None
    warnings: list[str] = []
    if target.ip is None:
        try:
            asyncio.run(
                resolve_and_check(target.host, make_resolver(settings), allow_private=private)
            )
        except UnsafeTarget as exc:
            raise RequestError(400, f"refused webhook URL: {exc.reason}") from None
        except DeliveryDeferred as exc:
            warnings.append(
                f"could not check {target.host} now ({exc}); it is checked at every send"
            )
    return target.url, warnings


def get(store: Store, webhook_id: str) -> Webhook:
    found = store.webhooks.get(webhook_id)
    if found is None:
        raise RequestError(404, f"no webhook {webhook_id}")
    return found


def register(
    store: Store, settings: Settings, *, account_id: int, url: str, events: Sequence[str]
) -> Registered:
    """Check ``url`` and register it for ``events`` (all when empty) with a new secret."""
    if store.accounts.get(account_id) is None:
        raise RequestError(404, f"no account {account_id}")
    checked, warnings = check_target(url, settings)
    secret = new_secret()
    webhook = store.webhooks.create(
        account_id=account_id, url=checked, events=events, secret=secret
    )
    return Registered(webhook=webhook, secret=secret, warnings=tuple(warnings))


def rotate_secret(
    store: Store, webhook_id: str, *, grace: float = DEFAULT_GRACE
) -> tuple[Webhook, str]:
    """A new secret for the endpoint; the previous one keeps signing for ``grace`` seconds."""
    get(store, webhook_id)
    if grace < 0:
        raise RequestError(400, "grace must be 0 or more seconds")
    secret = new_secret()
    webhook = store.webhooks.rotate_secret(webhook_id, new_secret=secret, grace=grace)
    if webhook is None:
        raise RequestError(409, f"webhook {webhook_id} is removed")
    return webhook, secret


def replay(store: Store, delivery_id: int) -> None:
    """Make a finished delivery due again; 404 unknown, 409 not finished or webhook removed."""
    d = store.webhooks.delivery(delivery_id)
    if d is None:
        raise RequestError(404, f"no webhook delivery {delivery_ref(delivery_id)}")
    if not store.webhooks.replay(delivery_id):
        raise RequestError(
            409,
            f"delivery {delivery_ref(delivery_id)} is {d.state}"
            + (" (its webhook is removed)" if d.state in ("succeeded", "abandoned") else "")
            + "; only finished deliveries of live webhooks are replayed",
        )


def replay_abandoned(store: Store, *, webhook_id: str | None = None) -> int:
    """Every abandoned delivery (of one webhook, or all) is due again; how many."""
    if webhook_id is not None:
        get(store, webhook_id)
    return store.webhooks.replay_abandoned(webhook_id=webhook_id)
