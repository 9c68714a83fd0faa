"""Failed API keys over real HTTP on loopback: throttled per client address with 429 and
Retry-After, while a correct key from the same address is never refused (issue 15 item 6)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import uvicorn

from relaygate.clock import FakeClock
from relaygate.gateway.admission import Admission
from relaygate.gateway.authlimit import AuthLimits, FailedAuthThrottle
from relaygate.gateway.http import HttpApi
from relaygate.settings import Settings
from relaygate.store.sqlite import SqliteStore as Store

LIMIT = 5
WINDOW = 60.0


@pytest.fixture
async def base_url(store: Store, settings: Settings, clock: FakeClock) -> AsyncIterator[str]:
    api = HttpApi(
        store=store,
        admission=Admission(store=store, settings=settings, clock=clock),
        max_request_bytes=1024 * 1024,
        auth_throttle=FailedAuthThrottle(clock, AuthLimits(failures=LIMIT, window=WINDOW)),
    )
    config = uvicorn.Config(
        api.app(), host="127.0.0.1", port=0, lifespan="off", log_config=None, access_log=False
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            assert not task.done(), "uvicorn did not start"
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


MESSAGE = {"from_email": "app@example.com", "to": ["r@dest.test"], "subject": "Hi", "text": "Hi"}


async def test_guesses_get_429_with_retry_after_and_the_right_key_still_sends(
    base_url: str, sender: dict[str, Any], clock: FakeClock
) -> None:
    async with httpx.AsyncClient(base_url=base_url) as client:
        for i in range(LIMIT):
            r = await client.get("/v1/messages", headers={"X-API-Key": f"sk_live_guess{i}"})
            assert r.status_code == 401, r.text
        r = await client.post("/v1/send", headers={"X-API-Key": "sk_live_guess"}, json=MESSAGE)
        assert r.status_code == 429
        assert r.headers["Retry-After"] == "60"
        assert "too many failed authentication attempts" in r.json()["detail"]
        # The legitimate client behind the same address is not locked out.
        ok = await client.post("/v1/send", headers={"X-API-Key": sender["secret"]}, json=MESSAGE)
        assert ok.status_code == 200, ok.text
        listed = await client.get("/v1/messages", headers={"X-API-Key": sender["secret"]})
        assert listed.status_code == 200 and len(listed.json()["data"]) == 1
        # A missing key is not a guess and is not throttled.
        assert (await client.get("/v1/messages")).status_code == 401
        clock.advance(45)
        r = await client.get("/v1/messages", headers={"X-API-Key": "sk_live_guess"})
        assert (r.status_code, r.headers["Retry-After"]) == (429, "15")
        clock.advance(15)
        # Only the two guesses at t=0 and t=45 lie in the last 60 s now: a plain 401 again.
        r = await client.get("/v1/messages", headers={"X-API-Key": "sk_live_guess"})
        assert r.status_code == 401
