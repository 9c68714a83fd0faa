"""AUTH: API key as password, TLS required off loopback, failures throttled per peer."""

from __future__ import annotations

import base64
from typing import Any

import aiosmtplib
import pytest

from relaygate.clock import FakeClock
from relaygate.gateway import smtp as smtp_module
from relaygate.store.sqlite import SqliteStore as Store

CLIENT = "client.test"


def plain(secret: str, user: str = "apikey") -> bytes:
    return base64.b64encode(f"\0{user}\0{secret}".encode())


@pytest.fixture
def remote_peer(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests may only use loopback; treat the loopback peer as a remote one for the TLS rule."""
    monkeypatch.setattr(smtp_module, "is_loopback", lambda ip: False)


async def test_off_loopback_auth_needs_tls_then_works_after_starttls(
    start_gateway: Any, certs: Any, sender: dict[str, Any], remote_peer: None
) -> None:
    gw = await start_gateway(tls=True)
    client = aiosmtplib.SMTP(
        hostname=gw.host,
        port=gw.port,
        local_hostname=CLIENT,
        start_tls=False,
        tls_context=certs.client_context(),
        timeout=10,
    )
    async with client:
        await client.ehlo()
        assert "auth" not in client.esmtp_extensions
        refused = await client.execute_command(b"AUTH", b"PLAIN", plain(sender["secret"]))
        assert (refused.code, refused.message[:6]) == (538, "5.7.11")
        await client.starttls()
        await client.ehlo()
        assert sorted(client.supported_auth_methods) == ["login", "plain"]
        ok = await client.execute_command(b"AUTH", b"PLAIN", plain(sender["secret"]))
        assert (ok.code, ok.message[:5]) == (235, "2.7.0")


async def test_auth_require_tls_false_allows_plain_auth_off_loopback(
    start_gateway: Any, sender: dict[str, Any], remote_peer: None
) -> None:
    gw = await start_gateway(auth_require_tls=False)
    async with aiosmtplib.SMTP(
        hostname=gw.host, port=gw.port, local_hostname=CLIENT, start_tls=False, timeout=10
    ) as client:
        await client.login("whoever", sender["secret"])


async def test_unknown_key_revoked_key_and_missing_scope_are_535(
    gw: Any, connect: Any, store: Store, sender: dict[str, Any]
) -> None:
    _read_only, read_secret = store.keys.create(sender["account"].id, scopes=["email:read"])
    revoked, revoked_secret = store.keys.create(sender["account"].id)
    store.keys.revoke(revoked.id)
    c = await connect()
    await c.cmd("EHLO client.test")
    assert (await c.cmd(b"AUTH PLAIN " + plain("sk_live_nope"))).startswith("535 5.7.8 ")
    assert (await c.cmd(b"AUTH PLAIN " + plain(revoked_secret))).startswith("535 5.7.8 ")
    scope = await c.cmd(b"AUTH PLAIN " + plain(read_secret))
    assert scope == "535 5.7.8 This API key lacks the email:send scope"
    # AUTH LOGIN with the two challenges.
    assert (await c.cmd("AUTH LOGIN")).startswith("334 ")
    assert (await c.cmd(base64.b64encode(b"apikey"))).startswith("334 ")
    assert (await c.cmd(base64.b64encode(sender["secret"].encode()))).startswith("235 2.7.0")
    assert (await c.cmd("AUTH PLAIN " + "x")).startswith("503 5.5.1")  # already authenticated


async def test_failed_auth_is_throttled_per_client_but_never_locks_out_the_right_key(
    start_gateway: Any, connect: Any, sender: dict[str, Any], clock: FakeClock
) -> None:
    """A stranger's guesses from the same address (a NAT, a shared host) throttle the guesses,
    not the legitimate client holding a correct key (issue 15 item 7)."""
    gw = await start_gateway(auth_failure_limit=5, auth_failure_window=60)
    stranger = await connect(port=gw.port)
    await stranger.cmd("EHLO client.test")
    for _ in range(5):
        assert (await stranger.cmd(b"AUTH PLAIN " + plain("sk_live_wrong"))).startswith("535 ")
    # Over the limit: the stranger's guesses get 454 now, on any connection from this address...
    assert (await stranger.cmd(b"AUTH PLAIN " + plain("sk_live_guess"))).startswith("454 4.7.0 ")
    client = await connect(port=gw.port)
    await client.cmd("EHLO client.test")
    assert (await client.cmd(b"AUTH PLAIN " + plain("sk_live_other"))).startswith("454 4.7.0 ")
    # ...while the right key, from the same address, goes through at once, by PLAIN and LOGIN.
    assert (await client.cmd(b"AUTH PLAIN " + plain(sender["secret"]))).startswith("235 ")
    third = await connect(port=gw.port)
    await third.cmd("EHLO client.test")
    assert (await third.cmd("AUTH LOGIN")).startswith("334 ")
    assert (await third.cmd(base64.b64encode(b"apikey"))).startswith("334 ")
    assert (await third.cmd(base64.b64encode(sender["secret"].encode()))).startswith("235 ")
    # Throttled while 5 failures lie within the last 60 s; then a wrong key is a plain 535 again.
    clock.advance(59)
    assert (await stranger.cmd(b"AUTH PLAIN " + plain("sk_live_more"))).startswith("454 4.7.0 ")
    clock.advance(2)
    assert (await stranger.cmd(b"AUTH PLAIN " + plain("sk_live_more"))).startswith("535 5.7.8 ")
