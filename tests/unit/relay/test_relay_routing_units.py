"""Pure parts of routing, TLS policy and the client: ordering, error translation, reply parsing."""

from __future__ import annotations

import random
import ssl
from typing import Any

import dns.exception
import dns.resolver
import pytest

from relaygate.errors import DeliveryDeferred, DeliveryFailed, TransientError
from relaygate.relay.client import Outcome, RecipientResult, enhanced_status
from relaygate.relay.routing import (
    CaptureRouter,
    RouteDeferred,
    RouteFailed,
    RouteMode,
    SmarthostRouter,
    SmarthostSecurity,
    order_hosts,
    resolve_mx,
)
from relaygate.relay.tlspolicy import TlsMode, TlsPolicies, TlsPolicy


class RaisingResolver:
    """A resolver double whose every query raises ``exc``."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    async def resolve(self, *args: Any, **kwargs: Any) -> Any:
        raise self.exc


def test_order_hosts_by_preference_then_shuffled() -> None:
    records = [(20, "c"), (10, "b"), (10, "a"), (30, "d"), (10, "a")]
    orders = {tuple(order_hosts(records, random.Random(seed))) for seed in range(30)}
    assert orders == {("a", "b", "c", "d"), ("b", "a", "c", "d")}


def test_order_hosts_ignores_dns_listing_order() -> None:
    one = order_hosts([(10, "a"), (10, "b"), (10, "c")], random.Random(5))
    two = order_hosts([(10, "c"), (10, "a"), (10, "b")], random.Random(5))
    assert one == two


def test_order_hosts_keeps_the_best_preference_of_a_repeated_host() -> None:
    assert order_hosts([(20, "a"), (10, "a"), (15, "b")], random.Random(1)) == ["a", "b"]


@pytest.mark.parametrize(
    ("exc", "kind", "status"),
    [
        (dns.resolver.NXDOMAIN(), RouteFailed, "5.1.2"),
        (dns.resolver.NoNameservers(), RouteDeferred, "4.4.3"),
        (dns.resolver.LifetimeTimeout(timeout=1.0, errors=[]), RouteDeferred, "4.4.3"),
        (dns.exception.Timeout(), RouteDeferred, "4.4.3"),
        (dns.resolver.YXDOMAIN(), RouteDeferred, "4.4.3"),
        (dns.exception.DNSException("odd"), RouteDeferred, "4.4.3"),
        (OSError("network unreachable"), RouteDeferred, "4.4.3"),
    ],
)
async def test_every_dns_failure_is_translated(exc: BaseException, kind: type, status: str) -> None:
    with pytest.raises(kind) as err:
        await resolve_mx("x.test", RaisingResolver(exc), rng=random.Random(1))  # type: ignore[arg-type]
    assert err.value.status == status
    assert err.value.diagnostic


async def test_a_bug_is_not_disguised_as_a_dns_error() -> None:
    with pytest.raises(ZeroDivisionError):
        await resolve_mx("x.test", RaisingResolver(ZeroDivisionError()), rng=random.Random(1))  # type: ignore[arg-type]


def test_route_errors_fit_the_project_tree() -> None:
    deferred = RouteDeferred("4.4.3", "dns")
    failed = RouteFailed("5.1.10", "null mx")
    assert isinstance(deferred, DeliveryDeferred) and isinstance(deferred, TransientError)
    assert isinstance(failed, DeliveryFailed) and not isinstance(failed, TransientError)
    assert str(failed) == "5.1.10 null mx"


@pytest.mark.parametrize(
    ("code", "text", "status"),
    [
        (250, "2.0.0 OK queued as 123", "2.0.0"),
        (550, "5.1.1 <x@y>: Recipient address rejected", "5.1.1"),
        (451, "4.7.1 Greylisted", "4.7.1"),
        (550, "user unknown", "5.0.0"),
        (550, "4.1.1 mismatched class", "5.0.0"),
        (552, "5.3.4", "5.3.4"),
        (421, "4.4.2 host.example closing", "4.4.2"),
        (554, "5.7.1000 not a code", "5.0.0"),
        (250, "2.0.0\nsecond line", "2.0.0"),
    ],
)
def test_enhanced_status(code: int, text: str, status: str) -> None:
    assert enhanced_status(code, text) == status


def test_smtp_response_line() -> None:
    with_reply = RecipientResult(
        recipient="r",
        outcome=Outcome.DELIVERED,
        code=250,
        status="2.0.0",
        text="2.0.0 OK",
        remote_host=None,
    )
    without = RecipientResult(
        recipient="r",
        outcome=Outcome.DEFERRED,
        code=None,
        status="4.4.1",
        text="connect refused",
        remote_host=None,
    )
    assert with_reply.smtp_response == "250 2.0.0 OK"
    assert without.smtp_response == "connect refused"


def test_tls_policies_per_domain_and_suffix() -> None:
    verified = TlsPolicy(mode=TlsMode.VERIFIED)
    required = TlsPolicy(mode=TlsMode.REQUIRED)
    policies = TlsPolicies(
        default=TlsPolicy(mode=TlsMode.OPPORTUNISTIC),
        per_domain={"bank.test": verified, ".corp.test": required, ".eu.corp.test": verified},
    )
    assert policies.for_domain("Bank.Test.") is verified
    assert policies.for_domain("mail.bank.test").mode is TlsMode.OPPORTUNISTIC  # exact only
    assert policies.for_domain("x.corp.test") is required
    assert policies.for_domain("x.eu.corp.test") is verified  # the longest suffix wins
    assert policies.for_domain("corp.test").mode is TlsMode.OPPORTUNISTIC
    assert policies.for_domain("other.test").mode is TlsMode.OPPORTUNISTIC


def test_tls_contexts() -> None:
    opportunistic = TlsPolicy().client_context()
    assert opportunistic.verify_mode == ssl.CERT_NONE and not opportunistic.check_hostname
    assert TlsPolicy(mode=TlsMode.REQUIRED).client_context().verify_mode == ssl.CERT_NONE
    system = TlsPolicy(mode=TlsMode.VERIFIED).client_context()
    assert system.verify_mode == ssl.CERT_REQUIRED and system.check_hostname
    with pytest.raises(ValueError):
        TlsPolicy(mode=TlsMode.VERIFIED, trust=opportunistic).client_context()
    assert TlsPolicy().attempts_tls and not TlsPolicy().requires_tls
    assert not TlsPolicy(mode=TlsMode.NONE).attempts_tls
    assert (
        TlsPolicy(mode=TlsMode.REQUIRED).requires_tls
        and not TlsPolicy(mode=TlsMode.REQUIRED).verifies
    )


async def test_smarthost_and_capture_routes() -> None:
    starttls = await SmarthostRouter("relay.upstream", 587, auth=("u", "pw")).route("Dest.Test")
    assert (starttls.mode, starttls.domain, starttls.hosts, starttls.port) == (
        RouteMode.SMARTHOST,
        "dest.test",
        ("relay.upstream",),
        587,
    )
    assert starttls.tls.mode is TlsMode.VERIFIED and not starttls.implicit_tls
    assert "pw" not in repr(starttls)
    implicit = await SmarthostRouter(
        "h", 465, security=SmarthostSecurity.IMPLICIT, verify=False
    ).route("d")
    assert implicit.implicit_tls and implicit.tls.mode is TlsMode.REQUIRED
    plain = await SmarthostRouter("h", 25, security=SmarthostSecurity.NONE).route("d")
    assert plain.tls.mode is TlsMode.NONE
    capture = await CaptureRouter().route("D.test")
    assert capture.mode is RouteMode.CAPTURE and capture.hosts == ()
