"""Sending domains: the records to publish, DNS verification, DKIM key lifecycle, drift re-checks.

A domain identity is ``pending`` until ``verify`` finds both its verification TXT record
(``_relaygate.<domain>`` = ``relaygate-verification=<token>``) and its active RSA DKIM key in DNS;
then ``verified``. A verified domain whose records disappear becomes ``failing`` (and back to
``verified`` when they return); every move writes an event. A temporary DNS failure (SERVFAIL,
timeout) changes nothing: the reason is "temporary DNS failure". SPF, DMARC and the return-path
records are advice (warnings), never a reason to refuse.

DKIM keys: a new key is ``pending`` until a check sees its record published, then ``active``
(signing); the key it replaces becomes ``retiring`` and stays published for a grace period (default
7 days, per rotation), then ``retired`` (its record may be removed: an event says so). A key the
last check found unpublished is not used for signing (``store.domains.active_keys``). An operator
asserting a domain (``identity add DOMAIN --verified``) makes its keys active at once; the periodic
re-check still applies to it.

One account per domain: the DKIM keys and the verification belong to the domain, so a second
account cannot add a domain that another account holds.

Trusts: DNS answers are untrusted text, only compared with what we expect. Holds no private key
material: keys are generated on disk by ``dkim.keys`` and only their public half and path pass here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from relaygate import domaindns, mailauth
from relaygate.clock import Clock, iso
from relaygate.dkim.keys import Algorithm, check_domain, check_selector, generate_key
from relaygate.dkim.keys import key_path as dkim_key_path
from relaygate.dkim.records import dkim_txt_value, record_matches, split_txt
from relaygate.domaindns import DnsTemporaryFailure, Resolver
from relaygate.errors import RequestError
from relaygate.settings import Settings
from relaygate.store import domains as db
from relaygate.store.domains import (
    DEFAULT_GRACE,
    CheckResult,
    DomainIdentity,
    DomainStatus,
    KeyState,
    StoredKey,
)
from relaygate.store.spool import Store

log = logging.getLogger("relaygate.domains")

DEFAULT_RECHECK_INTERVAL = 6 * 3600.0
TEMPORARY = "temporary DNS failure"
VERIFY_PREFIX = "_relaygate"
LIVE_KEY_STATES = (KeyState.PENDING, KeyState.ACTIVE, KeyState.RETIRING)

__all__ = [
    "DEFAULT_GRACE",
    "DEFAULT_RECHECK_INTERVAL",
    "TEMPORARY",
    "Check",
    "CheckedRecord",
    "DomainChecker",
    "DomainSetup",
    "Record",
    "Rotation",
    "VerifyReport",
    "add_domain",
    "records_for",
    "rotate_keys",
    "sender_refusal",
    "verify_domain",
]


class Check(StrEnum):
    FOUND = "found"
    MISSING = "missing"
    DIFFERENT = "different"
    ERROR = "error"  # temporary DNS failure: unknown


@dataclass(frozen=True, kw_only=True)
class Record:
    """One DNS record to publish. ``value`` is the whole value; ``strings`` its TXT pieces."""

    type: str  # TXT | MX
    name: str
    value: str
    purpose: str  # verification | dkim | spf | dmarc | return-path
    required: bool = False  # needed for the domain to be verified (else advice)
    note: str = ""
    selector: str = ""  # dkim records only

    @property
    def strings(self) -> list[str]:
        return split_txt(self.value) if self.type == "TXT" else [self.value]

    def zone_line(self, ttl: int = 3600) -> str:
        if self.type == "TXT":
            rdata = " ".join(_quote(s) for s in self.strings)
        else:
            rdata = self.value if self.value.endswith(".") else self.value + "."
        return f"{self.name}. {ttl} IN {self.type} {rdata}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "name": self.name,
            "value": self.value,
            "purpose": self.purpose,
            "required": self.required,
            "note": self.note,
            "strings": self.strings,
            "zone": self.zone_line(),
        }


@dataclass(frozen=True, kw_only=True)
class CheckedRecord:
    record: Record
    check: Check
    found: tuple[str, ...] = ()
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        data = self.record.as_dict()
        data.update(check=self.check.value, found=list(self.found))
        if self.note:
            data["note"] = f"{data['note']}; {self.note}" if data["note"] else self.note
        return data


@dataclass(frozen=True, kw_only=True)
class VerifyReport:
    domain: str
    status: DomainStatus
    previous: DomainStatus
    reason: str
    records: tuple[CheckedRecord, ...]
    warnings: tuple[str, ...] = ()
    temporary: bool = False
    checked_at: float = 0.0

    @property
    def changed(self) -> bool:
        return self.status != self.previous

    def as_dict(self) -> dict[str, Any]:
        return {
            "domain": self.domain,
            "status": self.status.value,
            "previous_status": self.previous.value,
            "reason": self.reason,
            "temporary_failure": self.temporary,
            "checked_at": iso(self.checked_at),
            "records": [r.as_dict() for r in self.records],
            "warnings": list(self.warnings),
        }


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


def key_dict(key: StoredKey) -> dict[str, Any]:
    """A key for output: public material and lifecycle only (never the private key or its path)."""
    return {
        "domain": key.domain,
        "selector": key.selector,
        "algorithm": key.algorithm,
        "state": key.state.value,
        "name": f"{key.selector}._domainkey.{key.domain}",
        "value": dkim_txt_value(key.dkim_key()),
        "published": key.published,
        "created_at": iso(key.created_at),
        "activated_at": iso(key.activated_at) if key.activated_at is not None else None,
        "retire_after": iso(key.retire_after) if key.retire_after is not None else None,
    }


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


# -- records to publish -----------------------------------------------------------------------------
def verification_value(token: str) -> str:
    return f"relaygate-verification={token}"


def spf_suggestion(settings: Settings) -> str:
    return f"v=spf1 a:{settings.hostname} ~all"


def dmarc_suggestion(domain: str) -> str:
    return f"v=DMARC1; p=none; rua=mailto:postmaster@{domain}"


def records_for(
    domain: str, identity: DomainIdentity, keys: Sequence[StoredKey], settings: Settings
) -> list[Record]:
    """Every record to publish for ``domain``: verification, DKIM (pending, active and retiring
    keys), SPF and DMARC suggestions, and the return-path MX and SPF records."""
    rp = settings.return_path_domain
    host = settings.hostname
    records = [
        Record(
            type="TXT",
            name=f"{VERIFY_PREFIX}.{domain}",
            value=verification_value(identity.identity.token),
            purpose="verification",
            required=True,
            note="proves the domain is yours",
        )
    ]
    live = [k for k in keys if k.state in LIVE_KEY_STATES]
    for key in live:
        records.append(
            Record(
                type="TXT",
                name=f"{key.selector}._domainkey.{domain}",
                value=dkim_txt_value(key.dkim_key()),
                purpose="dkim",
                required=key.state is not KeyState.RETIRING,
                note=_key_note(key, live),
                selector=key.selector,
            )
        )
    smarthost = settings.delivery.mode == "smarthost"
    records += [
        Record(
            type="TXT",
            name=domain,
            value=spf_suggestion(settings),
            purpose="spf",
            note=(
                "advice: merge into your existing SPF record if you have one"
                + ("; in smarthost mode authorize your smarthost instead" if smarthost else "")
            ),
        ),
        Record(
            type="TXT",
            name=f"_dmarc.{domain}",
            value=dmarc_suggestion(domain),
            purpose="dmarc",
            note="advice: start with p=none, move to p=quarantine once reports show mail passing",
        ),
        Record(
            type="MX",
            name=rp,
            value=f"10 {host}",
            purpose="return-path",
            note=f"bounces to the VERP envelope sender reach relaygate ({host} needs an A record)",
        ),
        Record(
            type="TXT",
            name=rp,
            value=spf_suggestion(settings),
            purpose="return-path",
            note="SPF of the envelope sender domain, the one receivers check",
        ),
    ]
    return records


def _key_note(key: StoredKey, live: Sequence[StoredKey]) -> str:
    what = f"{key.algorithm} key, {key.state.value}"
    if key.state is KeyState.ACTIVE:
        return f"{what}: signing"
    if key.state is KeyState.RETIRING:
        until = iso(key.retire_after) if key.retire_after is not None else "later"
        return f"{what}: keep published until {until}, then remove"
    current = [k for k in live if k.algorithm == key.algorithm and k.state is KeyState.ACTIVE]
    if current:
        return (
            f"{what}: publish it; signing switches from {current[0].selector} to it when"
            " `relaygate identity verify` sees it"
        )
    return f"{what}: publish it; it signs once verified"


# -- adding a domain and rotating keys ---------------------------------------------------------------
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
        if not on_disk and not db.selector_taken(store, domain, candidate):
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
    stored = db.insert_key(store, key, state=state, now=now, grace=grace)
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
    ``verified``: the operator asserts the domain; it becomes ``verified`` (with an event) and its
    keys active. RequestError 400 for a bad name, 404 for no such account, 409 when another
    account holds the domain.
    """
    now = (clock or store.clock).now()
    domain = normalise_domain(domain)
    try:
        base = check_selector(selector) if selector else default_selector(now)
    except ValueError as exc:
        raise RequestError(400, str(exc)) from None
    for other in db.domain_identities(store, domain):
        if other.identity.account_id != account_id:
            raise RequestError(
                409, f"domain {domain} already belongs to account {other.identity.account_id}"
            )
    store.add_identity(account_id, domain)
    ident = db.domain_identities(store, domain)[0]
    live = db.keys_of(store, domain, states=(KeyState.PENDING, KeyState.ACTIVE))
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
        db.activate_now(
            store,
            [
                k.id
                for k in live
                if k.state is KeyState.PENDING
                and not any(a.algorithm == k.algorithm and a.state is KeyState.ACTIVE for a in live)
            ],
            now=now,
        )
        if ident.status is not DomainStatus.VERIFIED:
            db.set_status(
                store,
                ident.identity.id,
                src=ident.status,
                dst=DomainStatus.VERIFIED,
                reason="asserted by the operator",
                now=now,
            )
            ident = db.domain_identities(store, domain)[0]
    keys = db.keys_of(store, domain, states=LIVE_KEY_STATES)
    return DomainSetup(
        identity=ident,
        keys=tuple(keys),
        created=tuple(created),
        records=tuple(records_for(domain, ident, keys, settings)),
    )


def domain_records(store: Store, settings: Settings, domain: str) -> list[Record]:
    domain = normalise_domain(domain)
    ident = _identity(store, domain)
    return records_for(domain, ident, db.keys_of(store, domain, states=LIVE_KEY_STATES), settings)


def _identity(store: Store, domain: str) -> DomainIdentity:
    found = db.domain_identities(store, domain)
    if not found:
        raise RequestError(
            404, f"no domain {domain} (add it with `relaygate identity add --account ID {domain}`)"
        )
    return found[0]


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
    _identity(store, domain)
    if grace < 0:
        raise RequestError(400, "grace must not be negative")
    try:
        base = check_selector(selector) if selector else default_selector(now)
    except ValueError as exc:
        raise RequestError(400, str(exc)) from None
    keys = db.keys_of(store, domain, states=(KeyState.PENDING, KeyState.ACTIVE))
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


# -- verification ------------------------------------------------------------------------------------
Observed = dict[tuple[str, str], "list[str] | DnsTemporaryFailure"]


async def _observe(resolver: Resolver, rtype: str, name: str, seen: Observed) -> None:
    if (rtype, name) in seen:
        return
    try:
        if rtype == "MX":
            seen[(rtype, name)] = [f"{p} {h}" for p, h in await domaindns.mx(resolver, name)]
        else:
            seen[(rtype, name)] = await domaindns.txt(resolver, name)
    except DnsTemporaryFailure as exc:
        seen[(rtype, name)] = exc


def _judge(
    record: Record, seen: Observed, keys: dict[str, StoredKey], settings: Settings
) -> CheckedRecord:
    result = seen.get((record.type, record.name))
    if isinstance(result, DnsTemporaryFailure):
        return CheckedRecord(record=record, check=Check.ERROR, note=f"{TEMPORARY} ({result.why})")
    values = result or []
    if record.purpose == "verification":
        relevant = values
        ok = any(v.strip() == record.value for v in values)
    elif record.purpose == "dkim":
        key = keys[record.selector].dkim_key()
        relevant = values
        ok = any(record_matches(v, key) for v in values)
    elif record.type == "MX":
        relevant = values
        ok = any(v.split()[-1] == settings.hostname.lower() for v in values)
    elif record.purpose == "dmarc":
        relevant = mailauth.dmarc_records(values)
        ok = len(relevant) == 1 and "p" in mailauth.parse_dmarc(relevant[0])
    else:  # SPF, on the From domain or the return-path domain
        relevant = mailauth.spf_records(values)
        host = settings.hostname.lower()
        ok = len(relevant) == 1 and any(
            t.lower().lstrip("+-~?").split(":", 1)[-1].split("/")[0] == host
            for t in relevant[0].split()[1:]
        )
    if ok:
        return CheckedRecord(record=record, check=Check.FOUND, found=tuple(relevant))
    if relevant:
        return CheckedRecord(record=record, check=Check.DIFFERENT, found=tuple(relevant))
    return CheckedRecord(record=record, check=Check.MISSING)


def _describe(checked: CheckedRecord) -> str:
    what = {
        "verification": "verification record",
        "dkim": "DKIM record",
    }.get(checked.record.purpose, checked.record.purpose)
    state = "missing" if checked.check is Check.MISSING else "has a different value"
    return f"{what} {checked.record.name} TXT {state}"


async def verify_domain(
    store: Store,
    settings: Settings,
    domain: str,
    resolver: Resolver,
    *,
    clock: Clock | None = None,
) -> VerifyReport:
    """Look up every record of ``domain`` and move its state (and its keys') accordingly.

    Verified when the verification TXT and the active RSA DKIM key (or a pending one that this
    check activates) are published. A pending key seen published becomes active and the key it
    replaces ``retiring``; retiring keys past their grace become ``retired``. On a temporary DNS
    failure of a required record nothing changes and ``reason`` is "temporary DNS failure".
    RequestError 404 when there is no such domain identity.
    """
    now = (clock or store.clock).now()
    domain = normalise_domain(domain)
    primary = _identity(store, domain)
    idents = db.domain_identities(store, domain)
    keys = db.keys_of(store, domain, states=LIVE_KEY_STATES)
    planned = records_for(domain, primary, keys, settings)
    seen: Observed = {}
    await asyncio.gather(*(_observe(resolver, r.type, r.name, seen) for r in planned))
    by_selector = {k.selector: k for k in keys}
    judged = {(r.purpose, r.name): _judge(r, seen, by_selector, settings) for r in planned}
    dkim_checks = {
        by_selector[r.selector].id: judged[("dkim", r.name)] for r in planned if r.purpose == "dkim"
    }
    temporary = any(
        c.check is Check.ERROR
        for c in judged.values()
        if c.record.purpose in ("verification", "dkim") and c.record.required
    )
    warnings = await _advice(domain, settings, resolver, seen)
    previous = primary.status
    if temporary:
        db.record_check_time(
            store,
            [i.identity.id for i in idents],
            now=now,
            summary={"status": previous.value, "reason": TEMPORARY},
        )
        log.warning("domain check: %s", TEMPORARY, extra={"domain": domain})
        return VerifyReport(
            domain=domain,
            status=previous,
            previous=previous,
            reason=TEMPORARY,
            records=tuple(judged.values()),
            warnings=tuple(warnings),
            temporary=True,
            checked_at=now,
        )
    published = {
        key_id: c.check is Check.FOUND
        for key_id, c in dkim_checks.items()
        if c.check is not Check.ERROR
    }
    activate: list[StoredKey] = []
    for algorithm in ("rsa", "ed25519"):
        fresh = [
            k
            for k in keys
            if k.algorithm == algorithm and k.state is KeyState.PENDING and published.get(k.id)
        ]
        if fresh:
            activate.append(max(fresh, key=lambda k: (k.created_at, k.id)))
    signing: dict[str, StoredKey] = {}
    for k in keys:
        if k.state is KeyState.ACTIVE:
            signing.setdefault(k.algorithm, k)
    for k in activate:
        signing[k.algorithm] = k
    problems: list[str] = []
    rsa = signing.get("rsa")
    waiting = [k for k in keys if k.algorithm == "rsa" and k.state is KeyState.PENDING]
    if rsa is None and waiting:
        problems.append(_describe(dkim_checks[waiting[-1].id]))
    elif rsa is None:
        problems.append("no DKIM key (run `relaygate identity add` again to make one)")
    elif not published.get(rsa.id):
        problems.append(_describe(dkim_checks[rsa.id]))
    ed = signing.get("ed25519")
    if ed is not None and not published.get(ed.id):
        warnings.append(
            f"the Ed25519 key {ed.selector} is not published, so it does not sign until it is"
        )
    for k in keys:
        if k.state is KeyState.PENDING and k not in activate and not published.get(k.id):
            current = signing.get(k.algorithm)
            if current is not None and current.state is KeyState.ACTIVE:
                warnings.append(
                    f"the new {k.algorithm} key {k.selector} is not published yet; signing stays"
                    f" on {current.selector}"
                )
        if k.state is KeyState.RETIRING and published.get(k.id) is False:
            warnings.append(
                f"the old key {k.selector} was removed from DNS before its grace period ended;"
                " mail signed with it recently may fail DKIM"
            )
    retire = tuple(
        k.id
        for k in keys
        if k.state is KeyState.RETIRING and k.retire_after is not None and k.retire_after <= now
    )
    statuses: dict[int, tuple[DomainStatus, str]] = {}
    primary_reason = ""
    for ident in idents:
        token = judged.get(("verification", f"{VERIFY_PREFIX}.{domain}"))
        ident_problems = list(problems)
        if ident.identity.id == primary.identity.id:
            token_ok = token is not None and token.check is Check.FOUND
            if not token_ok and token is not None:
                ident_problems.insert(0, _describe(token))
        else:
            expected = verification_value(ident.identity.token)
            found = seen.get(("TXT", f"{VERIFY_PREFIX}.{domain}"))
            token_ok = isinstance(found, list) and any(v.strip() == expected for v in found)
            if not token_ok:
                ident_problems.insert(
                    0, f"verification record {VERIFY_PREFIX}.{domain} TXT missing"
                )
        if not ident_problems:
            status, reason = DomainStatus.VERIFIED, "verification record and DKIM key published"
        else:
            reason = "; ".join(ident_problems)
            status = (
                DomainStatus.PENDING
                if ident.status is DomainStatus.PENDING
                else DomainStatus.FAILING
            )
        statuses[ident.identity.id] = (status, reason)
        if ident.identity.id == primary.identity.id:
            primary_reason = reason
    new_status = statuses[primary.identity.id][0]
    applied = db.apply_check(
        store,
        CheckResult(
            domain=domain,
            now=now,
            published=published,
            activate=tuple(k.id for k in activate),
            retire=retire,
            statuses=statuses,
            summary={"status": new_status.value, "reason": primary_reason},
        ),
    )
    for k in applied.activated:
        log.info("dkim key activated", extra={"domain": domain, "selector": k.selector})
    for k in applied.retiring:
        warnings.append(
            f"the old key {k.selector} now retires: keep {k.selector}._domainkey.{domain} published"
            f" until {iso(k.retire_after or now)}, then remove it"
        )
    for k in applied.retired:
        warnings.append(
            f"the grace period of the old key {k.selector} is over: remove the TXT record"
            f" {k.selector}._domainkey.{domain} from DNS"
        )
    if new_status != previous:
        log.info("domain %s", new_status.value, extra={"domain": domain, "reason": primary_reason})
    # Report against the keys as they are now (an activated key shows as active).
    fresh_keys = db.keys_of(store, domain, states=LIVE_KEY_STATES)
    records = []
    for r in records_for(domain, primary, fresh_keys, settings):
        old = judged.get((r.purpose, r.name))
        if old is None:  # a key retired by this check is no longer listed
            continue
        records.append(CheckedRecord(record=r, check=old.check, found=old.found, note=old.note))
    return VerifyReport(
        domain=domain,
        status=new_status,
        previous=previous,
        reason=primary_reason,
        records=tuple(records),
        warnings=tuple(warnings),
        checked_at=now,
    )


async def _advice(domain: str, settings: Settings, resolver: Resolver, seen: Observed) -> list[str]:
    """SPF and DMARC warnings for ``domain`` and the return-path domain (advice only)."""
    warnings: list[str] = []

    async def lookup(name: str) -> list[str]:
        return await domaindns.txt(resolver, name)

    host = settings.hostname.lower()
    for name, label in ((domain, "the From domain"), (settings.return_path_domain, "")):
        txts = seen.get(("TXT", name))
        if isinstance(txts, DnsTemporaryFailure):
            warnings.append(f"SPF of {name}: not checked ({TEMPORARY})")
            continue
        advice = await mailauth.analyse_spf(name, txts or [], lookup)
        if not advice.records:
            warnings.append(
                f"SPF: {name} has no SPF record (suggested: {spf_suggestion(settings)})"
                + (f", {label}" if label else ", the envelope sender domain receivers check")
            )
        else:
            warnings.extend(advice.warnings)
            if host not in advice.records[0].lower():
                warnings.append(
                    f"SPF: the record of {name} does not mention {host}; make sure it authorizes"
                    f" relaygate's address (e.g. add a:{host})"
                )
    try:
        dmarc = await mailauth.analyse_dmarc(domain, lookup)
    except DnsTemporaryFailure:
        warnings.append(f"DMARC of {domain}: not checked ({TEMPORARY})")
    else:
        if not dmarc.records:
            warnings.append(
                f"DMARC: no DMARC record at _dmarc.{domain} (suggested: {dmarc_suggestion(domain)})"
            )
        else:
            warnings.extend(dmarc.warnings)
    return warnings


def verify_sync(store: Store, settings: Settings, domain: str) -> VerifyReport:
    """``verify_domain`` with the configured resolver, for the command line."""
    from relaygate.dnsresolver import make_resolver

    return asyncio.run(verify_domain(store, settings, domain, make_resolver(settings)))


# -- periodic re-check --------------------------------------------------------------------------------
class DomainChecker:
    """Re-checks every domain that has DKIM keys once per ``interval`` (default 6 h).

    ``run_once`` checks the domains whose last check is older than ``interval`` (or all with
    ``force``) and returns their reports; ``run`` loops until ``stop``. Domains added before this
    module existed (no DKIM key) are not re-checked. A check failing unexpectedly is logged and
    skipped; the loop goes on.
    """

    def __init__(
        self,
        store: Store,
        settings: Settings,
        clock: Clock,
        resolver: Resolver,
        interval: float = DEFAULT_RECHECK_INTERVAL,
        *,
        poll: float | None = None,
    ) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        self.store = store
        self.settings = settings
        self.clock = clock
        self.resolver = resolver
        self.interval = interval
        self.poll = poll if poll is not None else min(interval, 60.0)
        self._stopping = asyncio.Event()

    def due(self, *, force: bool = False) -> list[str]:
        now = self.clock.now()
        managed = {k.domain for k in db.all_keys(self.store)}
        domains: list[str] = []
        for ident in db.domain_identities(self.store):
            value = ident.identity.value
            if value not in managed or value in domains:
                continue
            last = ident.last_checked_at
            if force or last is None or now - last >= self.interval:
                domains.append(value)
        return domains

    async def run_once(self, *, force: bool = False) -> list[VerifyReport]:
        reports = []
        for domain in self.due(force=force):
            try:
                reports.append(
                    await verify_domain(
                        self.store, self.settings, domain, self.resolver, clock=self.clock
                    )
                )
            except Exception:
                log.exception("domain check failed", extra={"domain": domain})
        return reports

    async def run(self) -> None:
        self._stopping.clear()
        while not self._stopping.is_set():
            await self.run_once()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=self.poll)

    def stop(self) -> None:
        self._stopping.set()


# -- sending policy ------------------------------------------------------------------------------------
def sender_refusal(store: Store, account_id: int, address: str) -> str | None:
    """None when ``address`` may send for the account; else why not, in words for a 403 / 550.

    Agrees with ``Store.sender_allowed``: a verified address identity, or an address at a
    verified domain identity, may send.
    """
    if store.sender_allowed(account_id, address):
        return None
    addr = address.strip().lower()
    domain = addr.rpartition("@")[2]
    mine = db.account_identities(store, account_id)
    for ident in mine:
        if ident.identity.kind == "address" and ident.identity.value == addr:
            return f"address {addr} is {ident.identity.status}, not verified"
    for ident in mine:
        if ident.identity.kind != "domain" or ident.identity.value != domain:
            continue
        if ident.status is DomainStatus.FAILING:
            since = iso(ident.failing_since) if ident.failing_since is not None else "recently"
            why = ident.status_reason or "its DNS records are not published"
            return f"domain {domain} is failing verification since {since}: {why}"
        hint = (
            f"publish the TXT record {VERIFY_PREFIX}.{domain} and its DKIM record, then run"
            f" `relaygate identity verify {domain}`"
        )
        why = ident.status_reason
        return f"domain {domain} is pending verification: {why + '; ' if why else ''}{hint}"
    return f"{addr} is not a verified identity of this account (neither the address nor {domain})"


# -- human output ---------------------------------------------------------------------------------------
def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    cells = [list(headers), *[list(r) for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells
    )


def _display_value(record: Record) -> str:
    if record.type == "TXT":
        return " ".join(_quote(s) for s in record.strings)
    return record.value


def render_records(records: Sequence[Record]) -> str:
    """A table of the records to publish (the value last, as zone-file strings), then notes."""
    rows = [
        [r.type, r.name, r.purpose + ("" if r.required else " (advice)"), _display_value(r)]
        for r in records
    ]
    notes = [f"  {r.name} {r.type}: {r.note}" for r in records if r.note]
    return _table(["TYPE", "NAME", "PURPOSE", "VALUE"], rows) + "\n\nnotes:\n" + "\n".join(notes)


def render_report(report: VerifyReport) -> str:
    rows = []
    for c in report.records:
        r = c.record
        rows.append(
            [c.check.value.upper(), r.type, r.name, r.purpose + ("" if r.required else " (advice)")]
        )
    lines = [_table(["CHECK", "TYPE", "NAME", "PURPOSE"], rows), ""]
    for c in report.records:
        if c.check is Check.FOUND:
            continue
        lines.append(f"{c.record.name} {c.record.type} ({c.check.value}):")
        lines.append(f"  expected: {_display_value(c.record)}")
        for value in c.found:
            lines.append(f"  found:    {value}")
        if c.note:
            lines.append(f"  note:     {c.note}")
    if report.warnings:
        lines.append("warnings:")
        lines.extend(f"  - {w}" for w in report.warnings)
    change = f" (was {report.previous.value})" if report.status != report.previous else ""
    lines.append(f"domain {report.domain}: {report.status.value}{change}")
    if report.reason:
        lines.append(f"  {report.reason}")
    return "\n".join(lines)
