"""``relaygate inbound list`` / ``inbound show`` in-process, over reports that arrived over SMTP:
every report is listed with its outcome; unmatched ones say why and count for an account only
where a verified token named the message."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from relaygate import cli
from relaygate.bounces import verp
from relaygate.testing.process import write_config

from .conftest import BOUNCE_DOMAIN, SECRET, World, dsn

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def rg(tmp_path: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Any]:
    config = write_config(
        tmp_path / "cli.toml",
        top={"state_dir": str(tmp_path / "state"), "hostname": "relay.test"},
        delivery={"mode": "capture"},
    )
    code = cli.main(["--config", str(config), *args])
    captured = capsys.readouterr()
    text = captured.out if captured.out.strip() else captured.err
    if "--json" in args:
        return code, json.loads(text)
    return code, text


async def test_list_counts_and_show(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mid = await world.send("gone@dest.test", "fine@dest.test")
    forged = dsn(to=f"postmaster@{BOUNCE_DOMAIN}", rows=[("fine@dest.test", "5.1.1")])
    no_token = await world.report(f"postmaster@{BOUNCE_DOMAIN}", forged)
    old = verp.encode(message_id=mid, recipient_id=0, secret=SECRET, domain=BOUNCE_DOMAIN)
    world.clock.advance(1)
    legacy = await world.report(old, dsn(to=old, rows=[("fine@dest.test", "5.1.1")]))
    token = world.return_path("gone@dest.test")
    world.clock.advance(1)
    applied = await world.report(token, dsn(to=token, rows=[("gone@dest.test", "5.1.1")]))

    code, rows = rg(tmp_path, capsys, "inbound", "list", "--json")
    assert code == 0
    assert [(r["id"], r["status"], r["reason"], r["account_id"]) for r in rows] == [
        (applied, "applied", None, world.account_id),
        (legacy, "unmatched", "message_token", world.account_id),
        (no_token, "unmatched", "no_token", None),
    ]
    assert rows[0]["recipient_id"] == world.recipient_id(mid, "gone@dest.test")
    assert rows[2]["rcpts"] == [f"postmaster@{BOUNCE_DOMAIN}"] and rows[2]["peer"] == "127.0.0.1"
    assert rows[2]["size"] == len(forged), (rows[2]["size"], len(forged))
    assert all(ISO.match(r["received_at"]) and ISO.match(r["processed_at"]) for r in rows)

    code, rows = rg(tmp_path, capsys, "inbound", "list", "--status", "unmatched", "--json")
    assert [r["id"] for r in rows] == [legacy, no_token]
    code, rows = rg(tmp_path, capsys, "inbound", "list", "--account", "1", "--json")
    assert [r["id"] for r in rows] == [applied, legacy]

    code, counts = rg(tmp_path, capsys, "inbound", "list", "--counts", "--json")
    assert counts == [
        {"account_id": world.account_id, "status": "applied", "count": 1},
        {"account_id": world.account_id, "status": "unmatched", "count": 1},
        {"account_id": None, "status": "unmatched", "count": 1},
    ]

    code, text = rg(tmp_path, capsys, "inbound", "list")
    assert code == 0 and text.splitlines()[0].split()[:3] == ["id", "received", "peer"]
    assert "no_token" in text and "message_token" in text

    code, text = rg(tmp_path, capsys, "inbound", "show", no_token)
    assert code == 0 and "Final-Recipient: rfc822; fine@dest.test" in text


async def test_bad_input_is_a_clear_error(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, answer = rg(tmp_path, capsys, "inbound", "list", "--limit", "0", "--json")
    assert code == 1 and "--limit" in answer["error"]
    code, answer = rg(tmp_path, capsys, "inbound", "show", "in_nope", "--json")
    assert code == 1 and answer == {"error": "no inbound report in_nope"}
    code, text = rg(tmp_path, capsys, "inbound", "list")
    assert code == 0 and text.strip() == "no inbound reports"
