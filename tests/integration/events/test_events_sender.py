"""post_event against real HTTP(S) servers on loopback, names resolved by a loopback DNS server.

Safety: every address that could ever be dialled here is a 127.0.0.x address, including the
ones the SSRF guard must refuse (allow_private=False), so a broken guard could only reach
loopback. Non-loopback addresses appear only in test_events_resolve.py, which never connects.
"""

from __future__ import annotations

import inspect
import json
import socket
import ssl
from collections.abc import Iterator
from typing import Any

import pytest
import trustme

from relaygate.events.payloads import build_payload
from relaygate.events.sender import DEFAULT_TIMEOUT, SendOutcome, post_event
from relaygate.events.signing import new_secret, signature_headers, verify
from relaygate.testing.dns import DNSServer

HookServer = Any  # the loopback HTTP server from this directory's conftest.py

BODY = build_payload(
    event_type="delivery",
    user_id=42,
    sm_mail_id="msg_1",
    message_id="<m1@x.test>",
    recipients=["r@x.test"],
    smtp_response="250 ok",
    event_timestamp=1_790_000_000.0,
    tags=[],
    extra={},
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _post(dns: DNSServer, url: str, *, allow_private: bool = True, **kw: object):
    return await post_event(
        url=url,
        body=BODY,
        headers=kw.pop("headers", {}),  # type: ignore[arg-type]
        resolver=dns.async_resolver(),
        allow_private=allow_private,
        allow_http=True,
        **kw,  # type: ignore[arg-type]
    )


def test_default_timeout_is_ten_seconds() -> None:
    assert DEFAULT_TIMEOUT == 10.0
    assert inspect.signature(post_event).parameters["timeout"].default == 10.0


async def test_200_is_ok_and_request_is_as_signed(
    hook_server: HookServer, dns_server: DNSServer
) -> None:
    dns_server.set("hooks.test", "A", ["127.0.0.1"])
    secret = new_secret()
    headers = signature_headers(
        body=BODY, secrets=[secret], event_id="evt_1", timestamp=1_790_000_000
    )
    url = f"http://hooks.test:{hook_server.port}/ok?k=v"
    result = await _post(dns_server, url, headers=headers)
    assert result.ok and result.status == 200 and result.outcome is SendOutcome.OK
    assert result.error is None and result.address == "127.0.0.1"
    assert result.response_excerpt == "thanks"
    (seen,) = hook_server.requests
    assert (seen.method, seen.target, seen.body) == ("POST", "/ok?k=v", BODY)
    assert seen.headers["host"] == f"hooks.test:{hook_server.port}"
    assert seen.headers["content-type"] == "application/json"
    assert verify(seen.body, seen.headers["x-sm-signature"], secret)
    assert seen.headers["x-sm-event-id"] == "evt_1"
    # resolved exactly once per family: httpx never re-resolves the name
    assert sorted(q for q in dns_server.queries if q[0] == "hooks.test") == [
        ("hooks.test", "A"),
        ("hooks.test", "AAAA"),
    ]


async def test_204_is_ok(hook_server: HookServer, dns_server: DNSServer) -> None:
    result = await _post(dns_server, f"http://127.0.0.1:{hook_server.port}/accepted")
    assert result.ok and result.status == 204


async def test_500_is_a_failure(hook_server: HookServer, dns_server: DNSServer) -> None:
    result = await _post(dns_server, f"http://127.0.0.1:{hook_server.port}/fail")
    assert not result.ok and result.status == 500 and result.outcome is SendOutcome.HTTP_STATUS
    assert result.error == "HTTP 500" and result.response_excerpt == "boom"


async def test_redirect_is_not_followed(hook_server: HookServer, dns_server: DNSServer) -> None:
    result = await _post(dns_server, f"http://127.0.0.1:{hook_server.port}/redirect")
    assert not result.ok and result.status == 302 and result.outcome is SendOutcome.REDIRECT
    assert [r.target for r in hook_server.requests] == ["/redirect"]


async def test_hanging_receiver_is_cut_at_the_timeout(
    hook_server: HookServer, dns_server: DNSServer
) -> None:
    result = await _post(dns_server, f"http://127.0.0.1:{hook_server.port}/hang", timeout=0.5)
    assert not result.ok and result.outcome is SendOutcome.TIMEOUT and result.status is None
    assert 0.45 <= result.duration < 1.5


async def test_trickling_receiver_is_cut_at_the_total_deadline(
    hook_server: HookServer, dns_server: DNSServer
) -> None:
    # a byte every 50 ms would never trip a per-read timeout; the total deadline cuts it
    result = await _post(dns_server, f"http://127.0.0.1:{hook_server.port}/trickle", timeout=0.5)
    assert result.outcome is SendOutcome.TIMEOUT and 0.45 <= result.duration < 1.5


async def test_big_response_is_read_only_up_to_the_cap(
    hook_server: HookServer, dns_server: DNSServer
) -> None:
    result = await _post(
        dns_server, f"http://127.0.0.1:{hook_server.port}/big", max_response_bytes=1024
    )
    assert result.ok and len(result.response_excerpt.encode()) == 512


async def test_connection_refused_is_a_connect_failure(dns_server: DNSServer) -> None:
    result = await _post(dns_server, f"http://127.0.0.1:{_free_port()}/ok")
    assert (
        not result.ok
        and result.outcome is SendOutcome.CONNECT
        and "connect" in (result.error or "")
    )


async def test_falls_back_to_the_next_checked_address(
    hook_server: HookServer, dns_server: DNSServer
) -> None:
    # 127.0.0.2:<port> has no listener; 127.0.0.1:<port> does
    dns_server.set("two.test", "A", ["127.0.0.2", "127.0.0.1"])
    result = await _post(dns_server, f"http://two.test:{hook_server.port}/ok")
    assert result.ok and result.address == "127.0.0.1"


async def test_dns_failure_is_reported_as_dns(dns_server: DNSServer) -> None:
    result = await _post(dns_server, "http://nowhere.test/ok")
    assert result.outcome is SendOutcome.DNS and "NXDOMAIN" in (result.error or "")


# -- SSRF refusals happen before any connection --------------------------------------------


@pytest.fixture
async def decoy(start_hook_server: Any) -> HookServer:
    """A listener on 127.0.0.2 that must never see a connection."""
    return await start_hook_server("127.0.0.2")


@pytest.mark.parametrize("name", ["internal.test", "alias.test"])
async def test_name_resolving_to_loopback_is_refused_before_connecting(
    decoy: HookServer, dns_server: DNSServer, name: str
) -> None:
    dns_server.set("internal.test", "A", ["127.0.0.2"])
    dns_server.set("alias.test", "CNAME", "internal.test")
    result = await _post(dns_server, f"http://{name}:{decoy.port}/ok", allow_private=False)
    assert result.outcome is SendOutcome.REFUSED and "loopback" in (result.error or "")
    assert result.address is None and result.status is None
    assert decoy.connections == 0


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.2:{port}/ok",
        "http://[::ffff:127.0.0.2]:{port}/ok",
        "http://2130706434:{port}/ok",
        "http://0x7f.2:{port}/ok",
        "http://localhost:{port}/ok",
        "http://user@127.0.0.2:{port}/ok",
    ],
)
async def test_url_tricks_refused_before_connecting(
    decoy: HookServer, dns_server: DNSServer, url: str
) -> None:
    result = await _post(dns_server, url.format(port=decoy.port), allow_private=False)
    assert result.outcome is SendOutcome.REFUSED
    assert decoy.connections == 0 and dns_server.queries == []


async def test_https_required_unless_allowed(decoy: HookServer, dns_server: DNSServer) -> None:
    result = await post_event(
        url=f"http://127.0.0.2:{decoy.port}/ok",
        body=BODY,
        headers={},
        resolver=dns_server.async_resolver(),
        allow_private=True,
    )
    assert result.outcome is SendOutcome.REFUSED and "https" in (result.error or "")
    assert decoy.connections == 0


async def test_rebinding_after_the_check_does_not_move_the_connection(
    hook_server: HookServer, dns_server: DNSServer, start_hook_server: Any
) -> None:
    """The name answers 127.0.0.1 to the check, then is re-pointed at the decoy. The request
    must still go to the checked address: nothing resolves the name a second time."""
    dns_server.set("rebind.test", "A", ["127.0.0.1"])
    resolver = dns_server.async_resolver()
    original = resolver.resolve

    async def resolve_then_rebind(*args, **kwargs):  # type: ignore[no-untyped-def]
        answer = await original(*args, **kwargs)
        dns_server.set("rebind.test", "A", ["127.0.0.2"])
        return answer

    resolver.resolve = resolve_then_rebind  # type: ignore[method-assign]
    port = hook_server.port
    decoy_on_same_port = await start_hook_server("127.0.0.2", port=port)
    result = await post_event(
        url=f"http://rebind.test:{port}/ok",
        body=BODY,
        headers={},
        resolver=resolver,
        allow_private=True,
        allow_http=True,
    )
    assert result.ok and result.address == "127.0.0.1"
    assert len(hook_server.requests) == 1 and decoy_on_same_port.connections == 0


# -- HTTPS: SNI and certificate verification against the host name ------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
async def tls_server(ca: trustme.CA, start_hook_server: Any) -> HookServer:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("hooks.test").configure_cert(ctx)
    return await start_hook_server("127.0.0.1", ssl_context=ctx)


@pytest.fixture
def client_ctx(ca: trustme.CA) -> Iterator[ssl.SSLContext]:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    yield ctx


async def test_https_pins_ip_but_uses_sni_and_verifies_the_name(
    tls_server: HookServer, dns_server: DNSServer, client_ctx: ssl.SSLContext
) -> None:
    dns_server.set("hooks.test", "A", ["127.0.0.1"])
    result = await post_event(
        url=f"https://hooks.test:{tls_server.port}/ok",
        body=BODY,
        headers={},
        resolver=dns_server.async_resolver(),
        allow_private=True,
        ca_context=client_ctx,
    )
    assert result.ok, result.error
    assert tls_server.sni == ["hooks.test"]
    assert tls_server.requests[0].headers["host"] == f"hooks.test:{tls_server.port}"
    assert json.loads(tls_server.requests[0].body)["event_type"] == "delivery"


async def test_https_certificate_for_another_name_fails(
    tls_server: HookServer, dns_server: DNSServer, client_ctx: ssl.SSLContext
) -> None:
    dns_server.set("other.test", "A", ["127.0.0.1"])
    result = await post_event(
        url=f"https://other.test:{tls_server.port}/ok",
        body=BODY,
        headers={},
        resolver=dns_server.async_resolver(),
        allow_private=True,
        ca_context=client_ctx,
    )
    assert result.outcome is SendOutcome.TLS and not tls_server.requests
    assert tls_server.sni == ["other.test"]


async def test_https_untrusted_ca_fails_with_default_trust_store(
    tls_server: HookServer, dns_server: DNSServer
) -> None:
    dns_server.set("hooks.test", "A", ["127.0.0.1"])
    result = await post_event(
        url=f"https://hooks.test:{tls_server.port}/ok",
        body=BODY,
        headers={},
        resolver=dns_server.async_resolver(),
        allow_private=True,
    )
    assert result.outcome is SendOutcome.TLS and "CERTIFICATE_VERIFY_FAILED" in (result.error or "")
    assert not tls_server.requests
