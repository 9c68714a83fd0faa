"""Whether an address may send for an account, and if not, why (for a 403 detail or a 550 text)."""

from __future__ import annotations

from relaygate.clock import iso
from relaygate.domains.records import VERIFY_PREFIX
from relaygate.store import Store
from relaygate.store.states import DomainStatus


def sender_refusal(store: Store, account_id: int, address: str) -> str | None:
    """None when ``address`` may send for the account; else why not, in words for a 403 / 550.

    Agrees with ``Store.sender_allowed``: a verified address identity, or an address at a
    domain identity that is verified, at_risk or asserted, may send. A failed domain is refused
    with the record that is missing and since when.
    """
    if store.identities.sender_allowed(account_id, address):
        return None
    addr = address.strip().lower()
    domain = addr.rpartition("@")[2]
    mine = store.identities.details(account_id)
    for ident in mine:
        if ident.identity.kind == "address" and ident.identity.value == addr:
            return f"address {addr} is {ident.identity.status}, not verified"
    for ident in mine:
        if ident.identity.kind != "domain" or ident.identity.value != domain:
            continue
        if ident.status is DomainStatus.FAILED:
            since = iso(ident.failing_since) if ident.failing_since is not None else "recently"
            why = ident.status_reason or f"its DNS records are missing since {since}"
            return (
                f"domain {domain} failed verification: {why}; publish the records again, then"
                f" run `relaygate identity verify {domain}`"
            )
        hint = (
            f"publish the TXT record {VERIFY_PREFIX}.{domain} and its DKIM record, then run"
            f" `relaygate identity verify {domain}`"
        )
        why = ident.status_reason
        return f"domain {domain} is pending verification: {why + '; ' if why else ''}{hint}"
    return f"{addr} is not a verified identity of this account (neither the address nor {domain})"
