"""Adding a sending domain and rotating its DKIM keys (keys are made on disk by ``dkim.keys``).

One account per domain, the first to verify it: the DKIM keys belong to the domain, the
verification token to each account's claim. A pending claim holds nothing (no squatting);
adding a domain another account holds (verified, at_risk or asserted) is a 409. Selectors default to ``rg<YYYYMM>`` (``...ed``
for Ed25519), with ``-2``, ``-3``... appended when taken.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from relaygate.clock import Clock
from relaygate.dkim.keys import Algorithm, check_domain, check_selector, generate_key
from relaygate.dkim.keys import key_path as dkim_key_path
from relaygate.domains.records import LIVE_KEY_STATES, Record, key_dict, records_for
from relaygate.errors import RequestError
from relaygate.settings import Settings
from relaygate.store import Store
from relaygate.store.models import DEFAULT_GRACE, DomainIdentity, StoredKey
from relaygate.store.states import DOMAIN_HELD, DomainStatus, KeyState

log = logging.getLogger("relaygate.domains")


@dataclass(frozen=True, kw_only=True)
class DomainSetup:
    """What ``add_domain`` left behind: the identity, its live keys, the records to publish."""

    identity: DomainIdentity
    keys: tuple[StoredKey, ...]
    created: tuple[StoredKey, ...]
    records: tuple[Record, ...]

    def as_dict(self) -> dict[str, Any]:
        ident = self.identity.identity
        return {
            "id": ident.id,
            "account_id": ident.account_id,
            "kind": ident.kind,
            "value": ident.value,
            "domain": ident.value,
            "status": ident.status,
            "records": [r.as_dict() for r in self.records],
            "keys": [key_dict(k) for k in self.keys],
        }


@dataclass(frozen=True, kw_only=True)
class Rotation:
    domain: str
    created: tuple[StoredKey, ...]
    already_pending: tuple[StoredKey, ...]
    records: tuple[Record, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "domain": self.domain,
            "created": [key_dict(k) for k in self.created],
            "already_pending": [key_dict(k) for k in self.already_pending],
            "records": [r.as_dict() for r in self.records],
        }


def default_selector(now: float) -> str:
    return "rg" + datetime.fromtimestamp(now, UTC).strftime("%Y%m")


def _free_selector(store: Store, settings: Settings, domain: str, base: str) -> str:
    base = check_selector(base)
    for n in range(1, 1000):
        candidate = base if n == 1 else f"{base}-{n}"
        on_disk = any(
            dkim_key_path(
                settings.dkim_dir, domain=domain, selector=candidate, algorithm=a
            ).exists()
            for a in ("rsa", "ed25519")
        )
        if not on_disk and not store.dkim_keys.selector_taken(domain, candidate):
            return candidate
    raise RequestError(409, f"no free DKIM selector based on {base!r}")


def _new_key(
    store: Store,
    settings: Settings,
    domain: str,
    algorithm: Algorithm,
    *,
    base: str,
    state: KeyState,
    now: float,
    grace: float = DEFAULT_GRACE,
) -> StoredKey:
    selector = _free_selector(store, settings, domain, base)
    key = generate_key(settings.dkim_dir, domain=domain, selector=selector, algorithm=algorithm)
    stored = store.dkim_keys.insert(
        domain=key.domain,
        selector=key.selector,
        algorithm=key.algorithm,
        private_path=key.private_path,
        public_key=key.public_key_b64,
        state=state,
        now=now,
        grace=grace,
    )
    log.info(
        "dkim key created",
        extra={"domain": domain, "selector": selector, "algorithm": algorithm, "state": state},
    )
    return stored


def normalise_domain(domain: str) -> str:
    try:
        return check_domain(domain)
    except ValueError as exc:
        raise RequestError(400, str(exc)) from None


def add_domain(
    store: Store,
    settings: Settings,
    account_id: int,
    domain: str,
    *,
    verified: bool = False,
    ed25519: bool = False,
    selector: str | None = None,
    clock: Clock | None = None,
) -> DomainSetup:
    """Create (or return) a domain identity with its DKIM key(s) and the records to publish.

    A new domain is ``pending`` with a pending RSA-2048 key (and a pending Ed25519 key with
    ``ed25519``). Adding it again is idempotent (a missing Ed25519 key is added if asked).
    ``verified``: the operator asserts the domain; it becomes ``asserted`` (with an event) and its
    keys active: it sends from the first second and the re-check never fails it (it still says
    what it finds; only keys found published sign once a check has looked). RequestError 400
    for a bad name, 404 for no such account, 409 when another account holds the domain
    (verified, at_risk or asserted; another account's pending claim does not count).
    """
    now = (clock or store.clock).now()
    domain = normalise_domain(domain)
    try:
        base = check_selector(selector) if selector else default_selector(now)
    except ValueError as exc:
        raise RequestError(400, str(exc)) from None
    holder = domain_holder(store, domain)
    if holder is not None and holder.identity.account_id != account_id:
        raise RequestError(409, f"domain {domain} is verified by another account")
    store.identities.add(account_id, domain)
    ident = identity_of(store, domain, account_id)
    live = store.dkim_keys.of_domain(domain, states=(KeyState.PENDING, KeyState.ACTIVE))
    state = KeyState.ACTIVE if verified else KeyState.PENDING
    wanted: list[tuple[Algorithm, str]] = [("rsa", base)]
    if ed25519:
        wanted.append(("ed25519", base + "ed"))
    created = []
    for algorithm, sel in wanted:
        if not any(k.algorithm == algorithm for k in live):
            created.append(
                _new_key(store, settings, domain, algorithm, base=sel, state=state, now=now)
            )
    if verified:
        store.dkim_keys.activate_now(
            [
                k.id
                for k in live
                if k.state is KeyState.PENDING
                and not any(a.algorithm == k.algorithm and a.state is KeyState.ACTIVE for a in live)
            ],
            now=now,
        )
        if ident.status is not DomainStatus.ASSERTED:
            store.identities.move(
                ident.identity.id,
                src=ident.status,
                dst=DomainStatus.ASSERTED,
                reason="asserted by the operator",
                now=now,
            )
            ident = identity_of(store, domain, account_id)
    keys = store.dkim_keys.of_domain(domain, states=LIVE_KEY_STATES)
    return DomainSetup(
        identity=ident,
        keys=tuple(keys),
        created=tuple(created),
        records=tuple(records_for(domain, ident, keys, settings)),
    )


def domain_records(store: Store, settings: Settings, domain: str) -> list[Record]:
    domain = normalise_domain(domain)
    ident = identity_of(store, domain)
    return records_for(
        domain, ident, store.dkim_keys.of_domain(domain, states=LIVE_KEY_STATES), settings
    )


def domain_holder(store: Store, domain: str) -> DomainIdentity | None:
    """The identity that holds ``domain`` (verified, at_risk or asserted), if one does."""
    for found in store.identities.domains(domain):
        if found.identity.status in DOMAIN_HELD:
            return found
    return None


def identity_of(store: Store, domain: str, account_id: int | None = None) -> DomainIdentity:
    """The identity of ``domain`` that speaks for it: ``account_id``'s, or else the holder's,
    or else the oldest claim. 404 when there is none."""
    found = store.identities.domains(domain)
    if account_id is not None:
        found = [f for f in found if f.identity.account_id == account_id]
    if not found:
        raise RequestError(
            404, f"no domain {domain} (add it with `relaygate identity add --account ID {domain}`)"
        )
    held = [f for f in found if f.identity.status in DOMAIN_HELD]
    return (held or found)[0]


def rotate_keys(
    store: Store,
    settings: Settings,
    domain: str,
    *,
    grace: float = DEFAULT_GRACE,
    selector: str | None = None,
    clock: Clock | None = None,
) -> Rotation:
    """Start a rotation: a new pending key per algorithm that has an active key.

    Signing switches to the new key only when a check sees its record published; the old key is
    then kept (``retiring``) for ``grace`` seconds. If a pending key of an algorithm exists
    already, it is reported instead of making another. RequestError 409 if nothing is active.
    """
    now = (clock or store.clock).now()
    domain = normalise_domain(domain)
    identity_of(store, domain)
    if grace < 0:
        raise RequestError(400, "grace must not be negative")
    try:
        base = check_selector(selector) if selector else default_selector(now)
    except ValueError as exc:
        raise RequestError(400, str(exc)) from None
    keys = store.dkim_keys.of_domain(domain, states=(KeyState.PENDING, KeyState.ACTIVE))
    active = [k for k in keys if k.state is KeyState.ACTIVE]
    if not active:
        raise RequestError(
            409,
            f"domain {domain} has no active DKIM key to rotate: publish its pending record and"
            f" run `relaygate identity verify {domain}`",
        )
    created: list[StoredKey] = []
    pending: list[StoredKey] = []
    for old in active:
        waiting = [k for k in keys if k.state is KeyState.PENDING and k.algorithm == old.algorithm]
        if waiting:
            pending.extend(waiting)
            continue
        sel = base if old.algorithm == "rsa" else base + "ed"
        created.append(
            _new_key(
                store,
                settings,
                domain,
                old.algorithm,
                base=sel,
                state=KeyState.PENDING,
                now=now,
                grace=grace,
            )
        )
    return Rotation(
        domain=domain,
        created=tuple(created),
        already_pending=tuple(pending),
        records=tuple(r for r in domain_records(store, settings, domain) if r.purpose == "dkim"),
    )
