"""The admin command line as a script would use it: --json everywhere, stable keys."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from relaygate.testing.process import RelaygateProcess


def test_admin_commands_with_json(tmp_path: Path) -> None:
    rg = RelaygateProcess(tmp_path)
    assert rg.cli("init")["config_created"] is False  # the helper wrote the config; init keeps it
    assert rg.cli("init")["database"].endswith("relaygate.sqlite3")  # idempotent
    acc = rg.cli(
        "account", "create", "acme", "--plan", "paid", "--daily-quota", "500", "--rate-limit", "5"
    )
    assert acc == {
        "id": 1,
        "name": "acme",
        "plan": "paid",
        "daily_quota": 500,
        "rate_limit": 5,
        "track_opens": False,
        "track_clicks": False,
        "created_at": acc["created_at"],
    }
    assert rg.cli("account", "list") == [acc]  # one shape for create, list and set
    key = rg.cli(
        "key",
        "create",
        "--account",
        "1",
        "--scope",
        "email:send",
        "--scope",
        "email:read",
        "--name",
        "ci",
    )
    assert (
        key["key"].startswith("sk_live_")
        and len(key["key"]) >= 40
        and key["scopes"] == ["email:read", "email:send"]
    )
    listed = rg.cli("key", "list")
    assert listed[0]["id"] == key["id"] and key["key"] not in str(listed)
    assert rg.cli("key", "revoke", key["id"]) == {"id": key["id"], "revoked": True}
    assert rg.cli("key", "list")[0]["revoked"] is True
    admin = rg.cli("key", "create", "--account", "1", "--scope", "account:admin")
    assert admin["scopes"] == ["account:admin"] and admin["created_at"].endswith("Z")
    assert admin["id"] in [k["id"] for k in rg.cli("key", "list", "--account", "1")]
    ident = rg.cli("identity", "add", "--account", "1", "Example.COM", "--verified")
    assert (
        ident["value"] == "example.com"
        and ident["status"] == "asserted"  # the operator's word: sends at once, never failed
        and ident["kind"] == "domain"
    )
    assert rg.cli("identity", "list")[0]["value"] == "example.com"
    # An address identity is stored in the one canonical form (A-label domain, lower case).
    unicode_ident = rg.cli("identity", "add", "--account", "1", "Me@Bücher.Example", "--verified")
    assert unicode_ident["value"] == "me@xn--bcher-kva.example"
    # The database never holds the secret, only its hash.
    assert key["key"].encode() not in (rg.state_dir / "relaygate.sqlite3").read_bytes()


def test_errors_are_clear_and_nonzero(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text('bogus = 1\n[delivery]\nmode = "x"\n')
    proc = subprocess.run(
        [sys.executable, "-m", "relaygate", "--config", str(cfg), "check-config"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "bogus: unknown key" in proc.stderr and "delivery.mode" in proc.stderr
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "relaygate.cli",
            "--config",
            str(tmp_path / "none.toml"),
            "--json",
            "account",
            "list",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "no such config file" in proc.stdout
