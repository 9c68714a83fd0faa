"""SPF lookup counting and DMARC parsing, with a fake TXT lookup."""

from __future__ import annotations

import pytest

from relaygate.domains.advice import (
    analyse_dmarc,
    analyse_spf,
    parse_dmarc,
    spf_records,
    tree_walk_names,
)
from relaygate.domains.lookups import DnsTemporaryFailure


def _lookup(zone: dict[str, list[str] | str]):  # type: ignore[no-untyped-def]
    async def lookup(name: str) -> list[str]:
        value = zone.get(name, [])
        if value == "SERVFAIL":
            raise DnsTemporaryFailure(name, "TXT", "SERVFAIL")
        assert isinstance(value, list)
        return value

    return lookup


def test_spf_records_are_recognised_exactly() -> None:
    assert spf_records(["v=spf1 -all", "V=SPF1", "v=spf10 a", "x v=spf1", "v=spf1"]) == [
        "v=spf1 -all",
        "V=SPF1",
        "v=spf1",
    ]


@pytest.mark.parametrize(
    ("record", "lookups"),
    [
        ("v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 -all", 0),
        ("v=spf1 a mx ptr exists:%{i}.x.test -all", 4),
        ("v=spf1 a:relay.test/24 mx:mail.test ~all", 2),
        ("v=spf1 include:inc.test -all", 2),  # include + its own a
        ("v=spf1 redirect=red.test", 3),  # redirect + its include + a
        ("v=spf1 -all redirect=red.test", 0),  # redirect ignored when all is present
        ("v=spf1 include:loop.test", 2),  # a loop is not followed round again
        ("v=spf1 include:inc.test include:red.test", 5),  # inc.test counted each time
    ],
)
async def test_spf_lookup_count(record: str, lookups: int) -> None:
    zone: dict[str, list[str] | str] = {
        "inc.test": ["v=spf1 a -all"],
        "red.test": ["v=spf1 include:inc.test"],
        "loop.test": ["v=spf1 include:example.com"],
    }
    advice = await analyse_spf("example.com", [record], _lookup(zone))
    assert advice.lookups == lookups


async def test_spf_problems_are_explained() -> None:
    zone: dict[str, list[str] | str] = {"gone.test": [], "broken.test": "SERVFAIL"}
    advice = await analyse_spf(
        "example.com", ["v=spf1 include:gone.test include:broken.test +all"], _lookup(zone)
    )
    text = " | ".join(advice.warnings)
    assert "gone.test has no SPF record" in text
    assert "include:broken.test: could not be looked up (temporary DNS failure)" in text
    assert "+all" in text
    looped = await analyse_spf(
        "a.test", ["v=spf1 include:b.test"], _lookup({"b.test": ["v=spf1 include:a.test"]})
    )
    assert any("loop" in w for w in looped.warnings)
    assert (await analyse_spf("example.com", [], _lookup({}))).warnings == (
        "SPF: example.com has no SPF record",
    )


async def test_spf_over_the_limit_through_nested_includes() -> None:
    zone: dict[str, list[str] | str] = {
        f"n{i}.test": [f"v=spf1 a mx include:n{i + 1}.test"] for i in range(8)
    }
    advice = await analyse_spf("example.com", ["v=spf1 include:n0.test"], _lookup(zone))
    assert advice.lookups > 10
    assert any("over the limit of 10" in w for w in advice.warnings)


def test_parse_dmarc() -> None:
    assert parse_dmarc("v=DMARC1; p=reject ; rua=mailto:a@b.test;") == {
        "v": "DMARC1",
        "p": "reject",
        "rua": "mailto:a@b.test",
    }


@pytest.mark.parametrize(
    ("records", "warning"),
    [
        (["v=DMARC1; p=none; rua=mailto:d@example.com"], "p=none"),
        (["v=DMARC1; rua=mailto:d@example.com"], "no valid p= tag"),
        (["v=DMARC1; p=reject", "v=DMARC1; p=none"], "2 DMARC records"),
        (["v=DMARC1; p=quarantine; pct=20; rua=mailto:d@example.com"], "pct=20%"),
        (["v=DMARC1; p=reject"], "no rua="),
    ],
)
async def test_dmarc_warnings(records: list[str], warning: str) -> None:
    advice = await analyse_dmarc("example.com", _lookup({"_dmarc.example.com": records}))
    assert any(warning in w for w in advice.warnings), advice.warnings


async def test_dmarc_clean_and_missing() -> None:
    clean = await analyse_dmarc(
        "example.com", _lookup({"_dmarc.example.com": ["v=DMARC1; p=reject; rua=mailto:d@x.test"]})
    )
    assert clean.warnings == () and clean.policy == "reject"
    missing = await analyse_dmarc("a.example.com", _lookup({}))
    assert (
        missing.records == () and "no DMARC record at _dmarc.a.example.com" in missing.warnings[0]
    )


def test_tree_walk_names() -> None:
    assert tree_walk_names("mail.example.co.uk") == ["example.co.uk", "co.uk", "uk"]
    assert tree_walk_names("example.com") == ["com"]
    assert tree_walk_names("com") == []
    # A name of more than seven labels jumps to its last seven: at most eight queries in all.
    long = "a.b.c.d.e.f.g.h.i.example"
    assert tree_walk_names(long) == [
        "d.e.f.g.h.i.example",
        "e.f.g.h.i.example",
        "f.g.h.i.example",
        "g.h.i.example",
        "h.i.example",
        "i.example",
        "example",
    ]


def _recording(zone: dict[str, list[str]]):  # type: ignore[no-untyped-def]
    asked: list[str] = []

    async def lookup(name: str) -> list[str]:
        asked.append(name)
        return zone.get(name, [])

    return lookup, asked


async def test_dmarc_of_a_subdomain_under_a_two_label_suffix() -> None:
    # The organization is example.co.uk, not co.uk: the walk finds its record first.
    lookup, asked = _recording(
        {
            "_dmarc.example.co.uk": ["v=DMARC1; p=reject; sp=quarantine; rua=mailto:d@x.test"],
            "_dmarc.co.uk": ["v=DMARC1; p=none; psd=y"],
        }
    )
    got = await analyse_dmarc("mail.example.co.uk", lookup)
    assert got.source == "_dmarc.example.co.uk" and got.policy == "quarantine"
    assert asked == ["_dmarc.mail.example.co.uk", "_dmarc.example.co.uk"]


async def test_dmarc_walk_stops_at_the_nearest_record_and_reaches_a_public_suffix() -> None:
    lookup, asked = _recording({"_dmarc.co.uk": ["v=DMARC1; p=reject; psd=y; rua=mailto:r@x"]})
    got = await analyse_dmarc("mail.example.co.uk", lookup)
    assert got.source == "_dmarc.co.uk" and got.policy == "reject"
    assert any("public suffix" in w for w in got.warnings)
    assert asked == ["_dmarc.mail.example.co.uk", "_dmarc.example.co.uk", "_dmarc.co.uk"]
    lookup, asked = _recording({})
    none = await analyse_dmarc("a.b.example.org", lookup)
    assert none.records == () and asked[-1] == "_dmarc.org" and len(asked) == 4
