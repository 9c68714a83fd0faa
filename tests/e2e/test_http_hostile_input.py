"""Hostile JSON over real HTTP (issue 15 item 7): lone surrogates in any field and variables
nested hundreds deep are 400s naming the field (they were 503 "retry later", retried for
ever); trace and authentication headers in ``headers`` are 400s; ``loop.cycle`` prints its
values (it printed a generator's heap address). Nothing refused is queued."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import httpx
import pytest

from relaygate.testing.process import RelaygateProcess


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RelaygateProcess, str]]:
    rg = RelaygateProcess(Path(tmp_path_factory.mktemp("hostile")))
    rg.init()
    rg.cli("account", "create", "acme", "--plan", "paid", "--rate-limit", "1000")
    rg.cli("identity", "add", "--account", "1", "example.com", "--verified")
    key = rg.cli(
        "key", "create", "--account", "1", "--scope", "email:send", "--scope", "email:read"
    )["key"]
    with rg:
        yield rg, key


def _send(rg: RelaygateProcess, key: str, body: dict[str, Any]) -> httpx.Response:
    # json.dumps escapes a lone surrogate as \\ud800, as any client's JSON encoder would
    return httpx.post(
        f"{rg.http_url}/v1/send",
        headers={"X-API-Key": key, "Content-Type": "application/json"},
        content=json.dumps(body),
        timeout=30,
    )


BASE = {"from_email": "a@example.com", "to": ["r@dest.test"]}
INLINE = {**BASE, "subject": "s", "text": "t"}
TEMPLATE = {**BASE, "template": "welcome", "variables": {"user": {"first_name": "A"}}}


def _deep(levels: int) -> Any:
    value: Any = "x"
    for _ in range(levels):
        value = {"d": value}
    return value


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({**INLINE, "text": "a\ud800"}, "text: contains a lone surrogate (U+D800) at character 1"),
        ({**INLINE, "html": "<p>\udfff</p>"}, "html: contains a lone surrogate (U+DFFF)"),
        ({**INLINE, "subject": "\ud800"}, "subject: contains a lone surrogate"),
        ({**INLINE, "tags": ["ok", "t\udc00"]}, "tags[1]: contains a lone surrogate (U+DC00)"),
        ({**BASE, "template": "we\ud800"}, "template: contains a lone surrogate"),
        (
            {**TEMPLATE, "variables": {"user": {"first_name": "\ud83d"}}},
            "variables.user.first_name: contains a lone surrogate (U+D83D)",
        ),
        (
            {**TEMPLATE, "variables": {"user": {"first_name": "A"}, "k\ud800": 1}},
            "variables: the key 'k\\ud800' contains a lone surrogate",
        ),
        ({**INLINE, "headers": {"X-A": "\ud800"}}, "headers.X-A: contains a lone surrogate"),
        (
            {**TEMPLATE, "variables": {"user": {"first_name": "A"}, "deep": _deep(500)}},
            "variables.deep.d.d.",
        ),
    ],
)
def test_unencodable_or_deep_input_is_a_400_naming_the_field(
    server: tuple[RelaygateProcess, str], body: dict[str, Any], detail: str
) -> None:
    rg, key = server
    r = _send(rg, key, body)
    assert r.status_code == 400, r.text
    assert detail in r.json()["detail"]
    if "deep" in body.get("variables", {}):
        assert r.json()["detail"].endswith("nested more than 64 levels deep")


@pytest.mark.parametrize(
    "name",
    [
        "Return-Path",
        "DKIM-Signature",
        "Authentication-Results",
        "ARC-Seal",
        "ARC-Message-Signature",
        "arc-authentication-results",
        "Received-SPF",
        "Resent-From",
        "RESENT-MESSAGE-ID",
    ],
)
def test_forged_trace_and_authentication_headers_are_refused(
    server: tuple[RelaygateProcess, str], name: str
) -> None:
    rg, key = server
    r = _send(rg, key, {**INLINE, "headers": {name: "i=1; mx.example; spf=pass"}})
    assert r.status_code == 400, r.text
    assert r.json()["detail"].startswith(f"headers: header {name!r} is ")


def test_loop_cycle_prints_its_values(server: tuple[RelaygateProcess, str]) -> None:
    rg, key = server
    subject = "{% for i in [1, 2, 3] %}{{ loop.cycle('odd', 'even') }} {% endfor %}"
    r = _send(rg, key, {**TEMPLATE, "subject": subject})
    assert r.status_code == 200, r.text
    path = rg.capture_dir / f"{r.json()['id']}.eml"
    deadline = time.monotonic() + 20
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)  # delivery to the capture directory happens in the background
    message = message_from_bytes(path.read_bytes(), policy=policy.default)
    assert message["Subject"] == "odd even odd"


def test_nothing_refused_was_queued(server: tuple[RelaygateProcess, str]) -> None:
    rg, key = server
    r = httpx.get(f"{rg.http_url}/v1/messages", headers={"X-API-Key": key}, timeout=30)
    assert [m["subject"] for m in r.json()["data"]] in ([], ["odd even odd"])
