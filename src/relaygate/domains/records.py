"""The DNS records a sending domain publishes: verification, DKIM, SPF, DMARC, return path.

Pure functions of the identity, its keys and the settings, plus their display (a table, zone-file
lines). Public material only: a key appears as its ``p=`` value, never its private half or path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from relaygate.clock import iso
from relaygate.dkim.keys import from_stored
from relaygate.dkim.records import dkim_txt_value, split_txt
from relaygate.settings import Settings
from relaygate.store.models import DomainIdentity, StoredKey
from relaygate.store.states import KeyState

VERIFY_PREFIX = "_relaygate"
LIVE_KEY_STATES = (KeyState.PENDING, KeyState.ACTIVE, KeyState.RETIRING)


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


def key_dict(key: StoredKey) -> dict[str, Any]:
    """A key for output: public material and lifecycle only (never the private key or its path)."""
    return {
        "domain": key.domain,
        "selector": key.selector,
        "algorithm": key.algorithm,
        "state": key.state.value,
        "name": f"{key.selector}._domainkey.{key.domain}",
        "value": dkim_txt_value(from_stored(key)),
        "published": key.published,
        "created_at": iso(key.created_at),
        "activated_at": iso(key.activated_at) if key.activated_at is not None else None,
        "retire_after": iso(key.retire_after) if key.retire_after is not None else None,
    }


def key_lifecycle(key: StoredKey, *, now: float) -> dict[str, Any]:
    """A key for a listing: ``key_dict`` without the record value, plus whether its record may be
    removed from DNS (``removable``) and what to do about it (``advice``, "" when nothing)."""
    item = key_dict(key)
    del item["value"]
    removable = key.state is KeyState.RETIRED or (
        key.state is KeyState.RETIRING and key.retire_after is not None and key.retire_after <= now
    )
    item["removable"] = removable
    if removable:
        item["advice"] = f"remove {item['name']} TXT from DNS"
    elif key.state is KeyState.RETIRING:
        item["advice"] = f"keep {item['name']} published until {iso(key.retire_after or now)}"
    else:
        item["advice"] = ""
    return item


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
                value=dkim_txt_value(from_stored(key)),
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


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    cells = [list(headers), *[list(r) for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells
    )


def display_value(record: Record) -> str:
    if record.type == "TXT":
        return " ".join(_quote(s) for s in record.strings)
    return record.value


def render_records(records: Sequence[Record]) -> str:
    """A table of the records to publish (the value last, as zone-file strings), then notes."""
    rows = [
        [r.type, r.name, r.purpose + ("" if r.required else " (advice)"), display_value(r)]
        for r in records
    ]
    notes = [f"  {r.name} {r.type}: {r.note}" for r in records if r.note]
    return table(["TYPE", "NAME", "PURPOSE", "VALUE"], rows) + "\n\nnotes:\n" + "\n".join(notes)
