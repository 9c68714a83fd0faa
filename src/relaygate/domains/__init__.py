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
last check found unpublished is not used for signing (``DkimKeys.signing``). An operator
asserting a domain (``identity add DOMAIN --verified``) makes its keys active at once; the periodic
re-check still applies to it.

One account per domain: the DKIM keys and the verification belong to the domain, so a second
account cannot add a domain that another account holds.

Trusts: DNS answers are untrusted text, only compared with what we expect. Holds no private key
material: keys are generated on disk by ``dkim.keys`` and only their public half and path pass here.

Modules: ``records`` (what to publish), ``lifecycle`` (add a domain, rotate keys), ``verify`` (the
check and its report), ``checker`` (the periodic re-check), ``policy`` (why a sender is refused),
``lookups`` (the DNS edge; the one place dnspython errors are translated), ``advice`` (SPF and
DMARC analysis). The store keeps them (``relaygate.store``: ``identities``, ``dkim_keys``).
"""

from __future__ import annotations

from relaygate.domains.checker import DEFAULT_RECHECK_INTERVAL, DomainChecker
from relaygate.domains.lifecycle import (
    DomainSetup,
    Rotation,
    add_domain,
    default_selector,
    domain_records,
    normalise_domain,
    rotate_keys,
)
from relaygate.domains.policy import sender_refusal
from relaygate.domains.records import (
    LIVE_KEY_STATES,
    Record,
    key_dict,
    key_lifecycle,
    records_for,
    render_records,
)
from relaygate.domains.verify import (
    TEMPORARY,
    Check,
    CheckedRecord,
    VerifyReport,
    render_report,
    verify_domain,
    verify_sync,
)
from relaygate.store.models import DEFAULT_GRACE

__all__ = [
    "DEFAULT_GRACE",
    "DEFAULT_RECHECK_INTERVAL",
    "LIVE_KEY_STATES",
    "TEMPORARY",
    "Check",
    "CheckedRecord",
    "DomainChecker",
    "DomainSetup",
    "Record",
    "Rotation",
    "VerifyReport",
    "add_domain",
    "default_selector",
    "domain_records",
    "key_dict",
    "key_lifecycle",
    "normalise_domain",
    "records_for",
    "render_records",
    "render_report",
    "rotate_keys",
    "sender_refusal",
    "verify_domain",
    "verify_sync",
]
