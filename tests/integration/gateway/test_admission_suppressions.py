"""The suppression list at admission, for both ways in: a listed recipient is committed as
``suppressed`` (a bounce event naming the reason, no quota used), whatever the case of its
address; a tracked message gives a suppressed recipient no body. The list is read inside the
admission transaction, except for tracked messages (their bodies are built before it)."""

from __future__ import annotations

import base64
import re
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest

from relaygate.clock import FakeClock
from relaygate.events.tracking import read_token
from relaygate.gateway.admission import Admission
from relaygate.store.sqlite import SqliteStore as Store

from ...conftest import make_settings  # type: ignore[import-not-found]


def states(store: Store, msg_id: str) -> dict[str, str]:
    return {r.address: r.state for r in store.messages.recipients(msg_id)}


def suppression_event(store: Store, msg_id: str) -> dict[str, Any]:
    found = [
        e for e in store.messages.events_after(0) if e.message_id == msg_id and e.type == "bounce"
    ]
    assert len(found) == 1
    return found[0].data


@pytest.fixture
def listed(store: Store, sender: dict[str, Any]) -> dict[str, Any]:
    store.suppressions.add(
        sender["account"].id, "gone@dest.test", reason="userunknown", source="bounce"
    )
    return sender


@pytest.mark.parametrize("tracked", [False, True])
async def test_http_send(
    tmp_path: Path, store: Store, clock: FakeClock, listed: dict[str, Any], tracked: bool
) -> None:
    settings = make_settings(tmp_path, http={"public_url": "https://t.relay.test"})
    if tracked:
        settings.secret_key_file.parent.mkdir(parents=True, exist_ok=True)
        settings.secret_key_file.write_bytes(base64.b64encode(b"k" * 32))
    admission = Admission(store=store, settings=settings, clock=clock)
    assert (admission.tracking_key is not None) is tracked
    before = store.usage.current_limits(listed["account"])
    accepted = await admission.send(
        listed["key"],
        listed["account"],
        {
            "from_email": "app@example.com",
            "to": ["Gone@Dest.TEST", "live@dest.test"],
            "subject": "s",
            "html": '<p><a href="https://example.com/x">x</a></p>',
            "track_opens": tracked,
            "track_clicks": tracked,
        },
    )
    assert states(store, accepted.id) == {
        "Gone@Dest.TEST": "suppressed",
        "live@dest.test": "queued",
    }
    event = suppression_event(store, accepted.id)
    assert event["reason"] == "suppressed" and "userunknown" in event["diagnostic"]
    used = before.quota_remaining - store.usage.current_limits(listed["account"]).quota_remaining
    assert used == 1  # only the live recipient counts against the daily quota
    if tracked:
        assert store.messages.body_for_delivery(accepted.id, 0)[0] == b""  # nothing to send to it
        body = store.messages.body_for_delivery(accepted.id, 1)[0]
        assert b"t.relay.test" in body
        # The links carry the admission clock's time, from which they expire.
        part = message_from_bytes(body, policy=policy.default).get_body(("html",))
        assert part is not None
        found = re.search(r"/t/c/([A-Za-z0-9_-]+)", part.get_content())
        assert found is not None
        ref = read_token(found[1], keys=[admission.tracking_key or b""], kind="c")
        assert ref is not None and ref.issued_at == int(clock.now())


async def test_smtp_submission(
    tmp_path: Path, store: Store, clock: FakeClock, listed: dict[str, Any]
) -> None:
    admission = Admission(store=store, settings=make_settings(tmp_path), clock=clock)
    accepted = await admission.submit_smtp(
        account=listed["account"],
        key=listed["key"],
        mail_from="app@example.com",
        rcpts=["GONE@dest.test", "live@dest.test"],
        data=b"From: app@example.com\r\nTo: live@dest.test\r\nSubject: s\r\n\r\nhi\r\n",
        peer="127.0.0.1",
    )
    assert states(store, accepted.id) == {
        "GONE@dest.test": "suppressed",
        "live@dest.test": "queued",
    }
    assert suppression_event(store, accepted.id)["reason"] == "suppressed"
