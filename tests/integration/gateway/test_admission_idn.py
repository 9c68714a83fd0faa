"""One domain normaliser on the ways in: HTTP and SMTP store and compare A-label domains
(UTS-46, IDNA-2008: ß and final sigma kept, case folded), so two spellings of one address meet
in the suppression list and a sender at straße.de is the verified xn--strae-oqa.de."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from relaygate.bounces import suppressions
from relaygate.clock import FakeClock
from relaygate.gateway.admission import Admission, _envelope_domain
from relaygate.store.sqlite import SqliteStore as Store

from ...conftest import make_settings  # type: ignore[import-not-found]


def states(store: Store, msg_id: str) -> dict[str, str]:
    return {r.address: r.state for r in store.messages.recipients(msg_id)}


async def test_two_spellings_meet_in_the_suppression_list(
    tmp_path: Path, store: Store, clock: FakeClock, sender: dict[str, Any]
) -> None:
    acct = sender["account"]
    # Listed in A-label form; sent to in Unicode (mixed case) over HTTP...
    store.suppressions.add(
        acct.id,
        suppressions.normalise_address("sup@xn--bcher-kva.example"),
        reason="userunknown",
        source="bounce",
    )
    admission = Admission(store=store, settings=make_settings(tmp_path), clock=clock)
    accepted = await admission.send(
        sender["key"],
        acct,
        {
            "from_email": "app@example.com",
            "to": ["sup@Bücher.example", "ok@bücher.example"],
            "subject": "s",
            "text": "hi",
        },
    )
    assert states(store, accepted.id) == {
        "sup@xn--bcher-kva.example": "suppressed",
        "ok@xn--bcher-kva.example": "queued",  # the envelope speaks A-labels
    }
    # ...and listed in Unicode form; sent to in A-label form over SMTP.
    assert suppressions.normalise_address("Other@BÜCHER.example") == "other@xn--bcher-kva.example"
    store.suppressions.add(
        acct.id,
        suppressions.normalise_address("Other@BÜCHER.example"),
        reason="userunknown",
        source="operator",
    )
    smtp = await admission.submit_smtp(
        account=acct,
        key=sender["key"],
        mail_from="app@example.com",
        rcpts=["other@xn--bcher-kva.example", "third@Bücher.Example"],
        data=b"From: app@example.com\r\nTo: other@xn--bcher-kva.example\r\nSubject: s\r\n\r\nhi\r\n",
        peer="127.0.0.1",
    )
    assert states(store, smtp.id) == {
        "other@xn--bcher-kva.example": "suppressed",
        "third@xn--bcher-kva.example": "queued",
    }


async def test_eszett_and_final_sigma_are_kept_not_mapped(
    tmp_path: Path, store: Store, clock: FakeClock, sender: dict[str, Any]
) -> None:
    acct = sender["account"]
    store.identities.add(acct.id, "xn--strae-oqa.de", verified=True)  # straße.de
    admission = Admission(store=store, settings=make_settings(tmp_path), clock=clock)
    http = await admission.send(
        sender["key"],
        acct,
        {"from_email": "a@Straße.de", "to": ["x@βόλος.com"], "subject": "s", "text": "hi"},
    )
    assert states(store, http.id) == {"x@xn--nxasmm1c.com": "queued"}  # ς kept (not σ)
    smtp = await admission.submit_smtp(
        account=acct,
        key=sender["key"],
        mail_from="a@straße.de",
        rcpts=["y@βόλοσ.com"],
        data=b"From: a@xn--strae-oqa.de\r\nTo: y@example.org\r\nSubject: s\r\n\r\nhi\r\n",
        peer="127.0.0.1",
    )
    assert states(store, smtp.id) == {"y@xn--nxasmq6b.com": "queued"}  # σ is another name
    # The domain DKIM keys are looked up under, from any spelling of the sender: never strasse.de.
    assert _envelope_domain("a@Straße.DE") == "xn--strae-oqa.de"
