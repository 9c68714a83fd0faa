"""The inbound processor never loops on a report it cannot apply, and keeps unmatched ones."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from relaygate.bounces.inbound import InboundProcessor
from relaygate.store.sqlite import SqliteStore as Store

from ...conftest import make_settings  # type: ignore[import-not-found]

REPORT = (
    b"From: MAILER-DAEMON@x.test\r\nTo: someone@bounces.relay.test\r\nSubject: hi\r\n\r\nhello\r\n"
)


async def test_failing_report_is_set_aside_and_unmatched_is_kept(
    tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(tmp_path)
    first = await store.inbound.save(
        mail_from="", rcpts=["someone@bounces.relay.test"], peer="127.0.0.1", data=REPORT
    )
    second = await store.inbound.save(
        mail_from="", rcpts=["someone@bounces.relay.test"], peer="127.0.0.1", data=REPORT
    )
    real = store.inbound.apply
    calls: list[str] = []

    async def flaky(**kw: Any) -> dict[str, Any]:
        calls.append(kw["inbound_id"])
        if kw["inbound_id"] == first:
            raise ValueError("boom")
        return await real(**kw)

    monkeypatch.setattr(store.inbound, "apply", flaky)
    processor = InboundProcessor(store, settings, secret=b"s" * 32)
    assert await processor.run_once() == 2
    assert store.inbound.pending() == []
    assert await processor.run_once() == 0 and sorted(calls) == sorted([first, second])  # each once
    rows = {r.id: r for r in store.inbound.reports()}
    assert (rows[first].status, rows[first].reason) == ("failed", "")
    assert (rows[second].status, rows[second].reason) == ("unmatched", "no_token")
    assert rows[second].account_id is None and rows[second].size == len(REPORT)
