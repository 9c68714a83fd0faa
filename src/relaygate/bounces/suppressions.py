"""The per-account suppression list as operators manage it: add, remove, import and export CSV.

Hard bounces and complaints add addresses automatically (``relaygate.bounces.inbound``); these are
the hand-made changes, the one code path for them whoever asks (the command line today; the
management API and the dashboard call the same functions). CSV is ``address,reason`` with an
optional header row; export adds the account, bounce type, source and creation time. Errors are
``RequestError`` (400 bad address, 404 not listed) whose ``detail`` is safe to show.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from relaygate.clock import iso
from relaygate.compose.addresses import AddressError, parse_mailbox
from relaygate.errors import RequestError
from relaygate.store import Store
from relaygate.store.models import Suppression

EXPORT_COLUMNS = ("address", "reason", "account_id", "bounce_type", "source", "created_at")


@dataclass(frozen=True, kw_only=True)
class Imported:
    """What an import did: how many addresses it suppressed and the lines it skipped, and why."""

    added: int
    problems: tuple[str, ...]


def normalise_address(value: str) -> str:
    """The address as the list keys it (canonical domain, lower case, no display name); 400 when
    it is not one. ``sup@Bücher.example`` and ``sup@xn--bcher-kva.example`` are one entry."""
    try:
        return parse_mailbox(value.strip()).ascii_addr_spec.lower()
    except AddressError as exc:
        raise RequestError(400, str(exc)) from None


def present(row: Suppression) -> dict[str, Any]:
    """An entry for output, times in ISO 8601."""
    return {
        "account_id": row.account_id,
        "address": row.address,
        "reason": row.reason,
        "bounce_type": row.bounce_type,
        "source": row.source,
        "created_at": iso(row.created_at),
        "expires_at": iso(row.expires_at) if row.expires_at else None,
    }


def add(
    store: Store,
    account_id: int,
    address: str,
    *,
    reason: str = "manual",
    expires_in: float = 0,
    source: str = "operator",
) -> str:
    """Suppress ``address`` (for ``expires_in`` seconds, or for good when 0); the address stored."""
    normalised = normalise_address(address)
    expires = store.clock.now() + expires_in if expires_in else None
    store.suppressions.add(
        account_id,
        normalised,
        reason=reason,
        source=source,
        bounce_type="hard",
        expires_at=expires,
    )
    return normalised


def remove(store: Store, account_id: int, address: str) -> str:
    """Take ``address`` off the list; 404 when it is not on it."""
    normalised = normalise_address(address)
    if not store.suppressions.remove(account_id, normalised):
        raise RequestError(404, f"{normalised} is not on account {account_id}'s suppression list")
    return normalised


def import_csv(store: Store, account_id: int, text: str) -> Imported:
    """Suppress each ``address[,reason]`` row of ``text`` (a whole CSV document; a leading
    byte-order mark, a header row and blank rows are skipped). Rows that are not an address are
    reported, the others imported."""
    added, problems = 0, []
    rows = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    for lineno, row in enumerate(rows, start=1):
        if not row or (lineno == 1 and row[0].strip().lower() == "address"):
            continue
        try:
            address = parse_mailbox(row[0].strip()).ascii_addr_spec.lower()
        except AddressError as exc:
            problems.append(f"line {lineno}: {exc}")
            continue
        reason = row[1].strip() if len(row) > 1 and row[1].strip() else "imported"
        store.suppressions.add(account_id, address, reason=reason, source="import")
        added += 1
    return Imported(added=added, problems=tuple(problems))


def decode_csv(raw: bytes) -> str:
    """A CSV file's bytes as text: UTF-8, with or without a byte-order mark; 400 otherwise."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise RequestError(
            400,
            f'line {line} is not UTF-8 text: save the file as UTF-8 ("CSV UTF-8") and try again',
        ) from None


def export_rows(store: Store, account_id: int | None) -> Iterator[list[Any]]:
    """The rows of an export (``EXPORT_COLUMNS``), every entry of one account or of all."""
    for r in store.suppressions.all(account_id, limit=10_000_000):
        yield [
            r.address,
            r.reason,
            r.account_id,
            r.bounce_type,
            r.source,
            iso(r.created_at),
        ]
