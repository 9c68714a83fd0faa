"""Suppression list actions: add, remove, CSV import (``relaygate.bounces.suppressions`` does
the work; this adds the actor's scope, the account and the audit log)."""

from __future__ import annotations

import csv

from relaygate.bounces import suppressions
from relaygate.bounces.suppressions import Imported
from relaygate.errors import Invalid, NotFound, RequestError
from relaygate.manage import fields
from relaygate.manage.actor import ADMIN, Actor
from relaygate.manage.audit import record
from relaygate.store.api import Store

#: The largest CSV an import takes at once (bytes).
MAX_IMPORT = 5 * 1024 * 1024


def _address(value: object) -> str:
    text = fields.text(value, "address", required=True, max_len=320)
    try:
        return suppressions.normalise_address(text)
    except RequestError as exc:
        raise Invalid("address", f"address: {exc.detail}") from None


def add_suppression(
    store: Store, actor: Actor, address: object, reason: object = None, *, expires_in: int = 0
) -> str:
    """Suppress ``address`` (for ``expires_in`` seconds, or for good when 0); returns the
    address as the list keeps it."""
    actor.require()
    normalised = _address(address)
    why = fields.text(reason, "reason", max_len=200, default="manual") or "manual"
    if expires_in < 0:
        raise Invalid("expires_in", "expires_in must not be negative")
    suppressions.add(
        store,
        actor.account_id,
        normalised,
        reason=why,
        source=actor.source,
        expires_in=expires_in,
    )
    record(store, actor, "suppression.add", normalised, {"reason": why})
    return normalised


def remove_suppression(store: Store, actor: Actor, address: object, *, scope: str = ADMIN) -> str:
    """Take ``address`` off the list; ``NotFound`` when it is not on it. ``scope``: what the
    route asks (``DELETE /v1/suppressions/{address}`` keeps ``email:send``, API.md §3)."""
    actor.require(scope)
    normalised = _address(address)
    if not store.suppressions.remove(actor.account_id, normalised):
        raise NotFound(f"{normalised} is not on account {actor.account_id}'s suppression list")
    record(store, actor, "suppression.remove", normalised)
    return normalised


def import_suppressions(store: Store, actor: Actor, raw: bytes) -> Imported:
    """Suppress each ``address,reason`` row of a CSV document (UTF-8); rows that are not an
    address are reported by line, the others imported."""
    actor.require()
    if len(raw) > MAX_IMPORT:
        raise Invalid("csv", f"csv must be at most {MAX_IMPORT} bytes")
    try:
        text = suppressions.decode_csv(raw)
    except RequestError as exc:
        raise Invalid("csv", f"csv: {exc.detail}") from None
    if not text.strip():
        raise Invalid("csv", "csv is empty: send rows of address,reason")
    try:
        result = suppressions.import_csv(store, actor.account_id, text)
    except csv.Error as exc:  # a field past the csv module's limit (rows before it are kept)
        raise Invalid("csv", f"csv cannot be read: {exc}") from None
    record(
        store,
        actor,
        "suppression.import",
        "",
        {"added": result.added, "skipped": len(result.problems)},
    )
    return result
