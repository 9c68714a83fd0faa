"""The serve process rewrites its ready files as a heartbeat, with the store's answer, on the
injected clock and sleep (``relaygate status`` tells running from stalled by it)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from relaygate.clock import FakeClock
from relaygate.ops.runstate import HEARTBEAT_SECONDS
from relaygate.service import Service
from relaygate.store import open_store_at

from ...conftest import make_settings  # type: ignore[import-not-found]


async def test_heartbeat_rewrites_the_ready_files(tmp_path: Path, clock: FakeClock) -> None:
    settings = make_settings(tmp_path)
    settings.state_dir.mkdir(parents=True)
    settings.secret_key_file.write_text("k" * 64)
    open_store_at(settings.database).close()
    service = Service(settings, roles=("webhooks",), clock=clock)
    service.prepare()
    service.store.open()
    service.store.start_writer()
    assert service._locks is not None
    started = clock.now()
    service._locks.write_ready({"started": started, "heartbeat": started, "store_ok": True})
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        if len(slept) == 2:
            raise asyncio.CancelledError
        slept.append(seconds)
        clock.advance(seconds)

    try:
        with pytest.raises(asyncio.CancelledError):
            await service._heartbeat(started, sleep=sleep)
        ready = json.loads((settings.state_dir / "run" / "webhooks.json").read_text())
    finally:
        service.store.close()
        service._locks.release()
    assert slept == [HEARTBEAT_SECONDS, HEARTBEAT_SECONDS]
    assert ready["heartbeat"] == started + 2 * HEARTBEAT_SECONDS
    assert ready["started"] == started and ready["store_ok"] is True
    assert ready["roles"] == ["webhooks"]
    assert not (settings.state_dir / "run" / "webhooks.json").exists()  # released with the locks
