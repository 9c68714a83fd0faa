"""The domain and DKIM commands as an operator runs them, against a DNS server on loopback."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

from relaygate.dkim.keys import load_key
from relaygate.testing.dns import DNSServer
from relaygate.testing.process import write_config


def _run(config: Path, *args: str, as_json: bool = True) -> tuple[int, Any, str]:
    proc = subprocess.run(
        [sys.executable, "-m", "relaygate.cli", "--config", str(config), *args]
        + (["--json"] if as_json else []),  # --json after the subcommand works too
        capture_output=True,
        text=True,
        timeout=60,
    )
    data = json.loads(proc.stdout) if as_json and proc.stdout.strip() else proc.stdout
    return proc.returncode, data, proc.stdout + proc.stderr


def test_domain_lifecycle_from_the_command_line(tmp_path: Path) -> None:
    with DNSServer({}) as dns:
        config = write_config(
            tmp_path / "relaygate.toml",
            top={"state_dir": str(tmp_path / "state"), "hostname": "relay.test"},
            delivery={"mode": "capture"},
            dns={"nameservers": [dns.nameserver], "timeout": 0.5},
        )
        printed: list[str] = []

        def run(*args: str, as_json: bool = True, code: int = 0) -> Any:
            rc, data, text = _run(config, *args, as_json=as_json)
            printed.append(text)
            assert rc == code, text
            return data

        run("init")
        run("account", "create", "acme", "--plan", "paid")
        added = run("identity", "add", "--account", "1", "example.com", "--selector", "one")
        assert added["domain"] == "example.com" and added["status"] == "pending"
        purposes = [r["purpose"] for r in added["records"]]
        assert purposes == ["verification", "dkim", "spf", "dmarc", "return-path", "return-path"]
        assert all(set(r) >= {"type", "name", "value", "purpose"} for r in added["records"])
        dkim_record = added["records"][1]
        assert dkim_record["name"] == "one._domainkey.example.com"
        assert all(len(s.encode()) <= 255 for s in dkim_record["strings"])

        human = run("identity", "add", "--account", "1", "example.com", as_json=False)
        assert "TYPE" in human and "_relaygate.example.com" in human and '" "' in human

        # Nothing published yet: exit 1, every required record missing.
        report = run("identity", "verify", "example.com", code=1)
        assert report["status"] == "pending"
        assert {r["check"] for r in report["records"] if r["required"]} == {"missing"}

        for r in added["records"]:
            if r["required"]:
                dns.set(r["name"], "TXT", [r["strings"]])
        report = run("identity", "verify", "example.com")
        assert report["status"] == "verified"
        assert {r["check"] for r in report["records"] if r["required"]} == {"found"}
        assert all("found" in r and "check" in r for r in report["records"])

        shown = run("dkim", "show", "example.com")
        assert [r["name"] for r in shown["records"]] == ["one._domainkey.example.com"]
        assert shown["keys"][0]["state"] == "active"
        assert "one._domainkey.example.com. 3600 IN TXT" in run(
            "dkim", "show", "example.com", as_json=False
        )

        rotated = run("dkim", "rotate", "example.com", "--selector", "two", "--grace", "3600")
        [new] = rotated["created"]
        assert new["selector"] == "two" and new["state"] == "pending"
        dns.set("two._domainkey.example.com", "TXT", [[new["value"][:200], new["value"][200:]]])
        report = run("identity", "verify", "example.com")
        assert any("now retires" in w for w in report["warnings"])
        keys = {k["selector"]: k for k in run("dkim", "list")}
        assert keys["two"]["state"] == "active" and keys["one"]["state"] == "retiring"
        assert keys["one"]["removable"] is False and "keep" in keys["one"]["advice"]

        dns.remove("two._domainkey.example.com")
        report = run("identity", "verify", "example.com", code=1)
        assert report["status"] == "at_risk" and "two._domainkey" in report["reason"]
        listed = run("identity", "list")
        assert listed[0]["status"] == "at_risk" and "missing" in listed[0]["reason"]

        failure = run("identity", "verify", "nope.example", code=1)
        assert "no domain nope.example" in failure["error"]

        key_files = sorted((tmp_path / "state" / "dkim" / "example.com").glob("*.pem"))
        assert len(key_files) == 2
        everything = "\n".join(printed)
        for path in key_files:
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
            public = load_key(path).public_key_b64
            secret = [
                ln for ln in path.read_text().splitlines() if len(ln) >= 40 and ln not in public
            ]
            assert secret and not [line for line in secret if line in everything]
        assert "PRIVATE KEY" not in everything and str(key_files[0]) not in everything
