"""MX routing against a real DNS server on loopback."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest

from relaygate.errors import DeliveryDeferred, DeliveryFailed
from relaygate.relay.routing import (
    MxRouter,
    RouteDeferred,
    RouteFailed,
    RouteMode,
    resolve_addresses,
    resolve_mx,
)
from relaygate.relay.tlspolicy import TlsMode, TlsPolicies, TlsPolicy
from relaygate.testing.dns import DNSServer

ZONE = {
    "pref.test": {"MX": [(20, "mx2.pref.test"), (10, "mx1.pref.test"), (30, "mx3.pref.test")]},
    "tie.test": {
        "MX": [(10, "a.tie.test"), (10, "b.tie.test"), (10, "c.tie.test"), (5, "first.tie.test")]
    },
    "implicit.test": {"A": ["127.0.0.1"], "AAAA": ["::1"]},
    "v6only.test": {"AAAA": ["::1"]},
    "nomail.test": {"TXT": ["no addresses at all"]},
    "null.test": {"MX": [(0, ".")]},
    "nullmixed.test": {"MX": [(0, "."), (10, "mx.nullmixed.test")]},
    "broken.test": "SERVFAIL",
    "slow.test": {"MX": "TIMEOUT"},
    "alias.test": {"CNAME": "pref.test"},
    "mx1.pref.test": {"A": ["127.0.0.1"]},
    "half.test": {"A": ["127.0.0.1"], "AAAA": "SERVFAIL"},
}


@pytest.fixture(scope="module")
def dns_server() -> Iterator[DNSServer]:
    with DNSServer(ZONE) as server:
        yield server


async def test_mx_by_preference(dns_server: DNSServer) -> None:
    hosts = await resolve_mx("pref.test", dns_server.async_resolver(), rng=random.Random(1))
    assert hosts == ["mx1.pref.test", "mx2.pref.test", "mx3.pref.test"]


async def test_mx_through_cname_and_case_and_trailing_dot(dns_server: DNSServer) -> None:
    hosts = await resolve_mx("Alias.Test.", dns_server.async_resolver(), rng=random.Random(1))
    assert hosts == ["mx1.pref.test", "mx2.pref.test", "mx3.pref.test"]


async def test_equal_preferences_shuffled_deterministically(dns_server: DNSServer) -> None:
    res = dns_server.async_resolver()
    orders = set()
    for seed in range(20):
        a = await resolve_mx("tie.test", res, rng=random.Random(seed))
        b = await resolve_mx("tie.test", res, rng=random.Random(seed))
        assert a == b  # same seed, same order
        assert a[0] == "first.tie.test"  # the lower preference always first
        assert sorted(a[1:]) == ["a.tie.test", "b.tie.test", "c.tie.test"]
        orders.add(tuple(a))
    assert len(orders) > 1  # different seeds give different orders


async def test_implicit_mx(dns_server: DNSServer) -> None:
    res = dns_server.async_resolver()
    assert await resolve_mx("implicit.test", res, rng=random.Random(1)) == ["implicit.test"]
    assert await resolve_mx("v6only.test", res, rng=random.Random(1)) == ["v6only.test"]


async def test_no_mx_no_address_bounces(dns_server: DNSServer) -> None:
    with pytest.raises(RouteFailed) as err:
        await resolve_mx("nomail.test", dns_server.async_resolver(), rng=random.Random(1))
    assert err.value.status == "5.4.4"


async def test_null_mx_bounces_5_1_10(dns_server: DNSServer) -> None:
    with pytest.raises(RouteFailed) as err:
        await resolve_mx("null.test", dns_server.async_resolver(), rng=random.Random(1))
    assert err.value.status == "5.1.10"
    assert isinstance(err.value, DeliveryFailed)
    assert "nullMX" in err.value.diagnostic


async def test_null_mx_mixed_with_real_mx_uses_the_real_ones(dns_server: DNSServer) -> None:
    hosts = await resolve_mx("nullmixed.test", dns_server.async_resolver(), rng=random.Random(1))
    assert hosts == ["mx.nullmixed.test"]


async def test_nxdomain_bounces_5_1_2(dns_server: DNSServer) -> None:
    with pytest.raises(RouteFailed) as err:
        await resolve_mx("nowhere.test", dns_server.async_resolver(), rng=random.Random(1))
    assert err.value.status == "5.1.2"
    assert "name=nowhere.test type=MX" in err.value.diagnostic


async def test_servfail_defers_4_4_3(dns_server: DNSServer) -> None:
    with pytest.raises(RouteDeferred) as err:
        await resolve_mx("broken.test", dns_server.async_resolver(), rng=random.Random(1))
    assert err.value.status == "4.4.3"
    assert isinstance(err.value, DeliveryDeferred)


async def test_timeout_defers_4_4_3(dns_server: DNSServer) -> None:
    with pytest.raises(RouteDeferred) as err:
        await resolve_mx("slow.test", dns_server.async_resolver(timeout=0.3), rng=random.Random(1))
    assert err.value.status == "4.4.3"


async def test_no_nameserver_listening_defers() -> None:
    with DNSServer({}) as server:
        res = server.async_resolver(timeout=0.5)
    # the server is stopped now: nothing answers on that port
    with pytest.raises(RouteDeferred):
        await resolve_mx("pref.test", res, rng=random.Random(1))


async def test_bad_domain_syntax_bounces(dns_server: DNSServer) -> None:
    res = dns_server.async_resolver()
    for bad in ("a..b.test", "x" * 64 + ".test", ""):
        with pytest.raises(RouteFailed) as err:
            await resolve_mx(bad, res, rng=random.Random(1))
        assert err.value.status == "5.1.2"


async def test_servfail_then_recovery(dns_server: DNSServer) -> None:
    res = dns_server.async_resolver()
    dns_server.set("flaky.test", None, "SERVFAIL")
    with pytest.raises(RouteDeferred):
        await resolve_mx("flaky.test", res, rng=random.Random(1))
    dns_server.set("flaky.test", None, {"MX": [(10, "mx1.pref.test")]})
    assert await resolve_mx("flaky.test", res, rng=random.Random(1)) == ["mx1.pref.test"]


async def test_resolve_addresses(dns_server: DNSServer) -> None:
    res = dns_server.async_resolver()
    assert await resolve_addresses("implicit.test", res) == ["127.0.0.1", "::1"]
    assert await resolve_addresses("implicit.test", res, ipv6=False) == ["127.0.0.1"]
    assert await resolve_addresses("half.test", res) == ["127.0.0.1"]  # AAAA failure tolerated
    assert await resolve_addresses("nomail.test", res) == []
    assert await resolve_addresses("127.0.0.1", res) == ["127.0.0.1"]
    assert await resolve_addresses("[::1]", res) == ["::1"]
    with pytest.raises(RouteFailed):
        await resolve_addresses("nowhere.test", res)
    with pytest.raises(RouteDeferred):
        await resolve_addresses("broken.test", res)


async def test_mx_router_applies_port_and_tls_policy(dns_server: DNSServer) -> None:
    policies = TlsPolicies(per_domain={"pref.test": TlsPolicy(mode=TlsMode.REQUIRED)})
    router = MxRouter(dns_server.async_resolver(), port=2525, tls=policies, rng=random.Random(1))
    route = await router.route("PREF.test")
    assert route.mode is RouteMode.MX
    assert route.hosts == ("mx1.pref.test", "mx2.pref.test", "mx3.pref.test")
    assert route.port == 2525
    assert route.tls.mode is TlsMode.REQUIRED
    other = await router.route("implicit.test")
    assert other.tls.mode is TlsMode.OPPORTUNISTIC


# -- the router's MX cache ------------------------------------------------------------------------


async def test_router_keeps_mx_records_for_their_ttl() -> None:
    with DNSServer({"c.test": {"MX": [(10, "a.c.test"), (10, "b.c.test")]}}, ttl=60) as dns:
        router = MxRouter(dns.async_resolver(), rng=random.Random(3))
        first = await router.route("c.test")
        dns.set("c.test", "MX", [(10, "new.c.test")])
        again = [await router.route("C.test.") for _ in range(20)]
        assert dns.queries.count(("c.test", "MX")) == 1  # answered from the cache
        assert sorted(first.hosts) == ["a.c.test", "b.c.test"]
        # still shuffled per route: equal preferences are not stuck in one order
        assert {r.hosts for r in again} == {("a.c.test", "b.c.test"), ("b.c.test", "a.c.test")}


async def test_router_asks_again_when_the_ttl_is_zero_and_never_keeps_failures() -> None:
    with DNSServer({"z.test": {"MX": [(10, "a.z.test")]}, "f.test": "SERVFAIL"}, ttl=0) as dns:
        router = MxRouter(dns.async_resolver(), rng=random.Random(3))
        assert (await router.route("z.test")).hosts == ("a.z.test",)
        dns.set("z.test", "MX", [(10, "new.z.test")])
        assert (await router.route("z.test")).hosts == ("new.z.test",)
        with pytest.raises(RouteDeferred):
            await router.route("f.test")
        dns.set("f.test", "MX", [(10, "up.f.test")])
        assert (await router.route("f.test")).hosts == ("up.f.test",)
