"""The installed ``relaygate`` command as an operator meets it: every mistake is one clear line on
stderr with a non-zero status (never a traceback), and every time in ``--json`` output is ISO
8601 UTC with a ``Z``."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from relaygate.store import open_store_at
from relaygate.store.ids import new_message_id
from relaygate.store.models import NewMessage, NewRecipient
from relaygate.testing.process import RelaygateProcess

ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def relaygate_bin() -> list[str]:
    exe = Path(sys.executable).with_name("relaygate")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "relaygate"]


class Cli:
    def __init__(self, rg: RelaygateProcess) -> None:
        self.config = str(rg.config)

    def run(self, *args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [*relaygate_bin(), "--config", self.config, *args],
            input=stdin,
            capture_output=True,
            timeout=60,
        )
        return subprocess.CompletedProcess(
            proc.args, proc.returncode, proc.stdout.decode(), proc.stderr.decode()
        )

    def json(self, *args: str, stdin: bytes = b"") -> Any:
        proc = self.run("--json", *args, stdin=stdin)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return json.loads(proc.stdout)

    def fails(self, *args: str, code: int = 1, stdin: bytes = b"") -> str:
        """Run a command that must fail; its one-line message."""
        proc = self.run(*args, stdin=stdin)
        assert proc.returncode == code, (args, proc.returncode, proc.stdout, proc.stderr)
        assert proc.stdout == "" and "Traceback" not in proc.stderr, proc.stderr
        line = proc.stderr.rstrip("\n")
        assert line.startswith("relaygate: ") and "\n" not in line, proc.stderr
        return line


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    rg = RelaygateProcess(tmp_path, webhooks={"allow_private": True})
    c = Cli(rg)
    assert c.run("init").returncode == 0
    c.json("account", "create", "acme", "--plan", "paid")
    return c


def test_mistakes_are_one_line_and_change_nothing(cli: Cli, tmp_path: Path) -> None:
    assert cli.fails("queue", "retry", "9999") == "relaygate: no message or recipient 9999"
    assert "msg_nope" in cli.fails("queue", "hold", "msg_nope", "42")
    assert cli.fails("key", "create", "--account", "nobody") == (
        "relaygate: no account named 'nobody'"
    )
    assert cli.fails("account", "set", "7", "--plan", "free") == "relaygate: no account 7"
    assert cli.fails("account", "create", "acme") == (
        "relaygate: an account named 'acme' exists already (id 1)"
    )
    missing = tmp_path / "missing.csv"
    assert cli.fails("suppression", "import", "--account", "acme", str(missing)) == (
        f"relaygate: {missing}: No such file or directory"
    )
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes("address,reason\nj\u00fcrgen@example.com,manual\n".encode("latin-1"))
    message = cli.fails("suppression", "import", "--account", "acme", str(latin1))
    assert "line 2 is not UTF-8" in message
    assert cli.fails(
        "suppression", "import", "--account", "acme", "-", stdin=b"ok@example.com\n\xff\n"
    ).startswith("relaygate: -: line 2 is not UTF-8")
    html = tmp_path / "nope.html"
    assert cli.fails(
        "template", "create", "t", "--account", "acme", "--subject", "s", "--html", str(html)
    ) == (f"relaygate: {html}: No such file or directory")
    # init never rewrites a config: a different --hostname is refused, not ignored
    refused = cli.fails("init", "--hostname", "mail.example.org", code=2)
    assert 'hostname = "relay.test" (asked for "mail.example.org")' in refused
    assert cli.json("suppression", "list") == []  # nothing was imported


def test_names_bom_csv_and_iso_times(cli: Cli, tmp_path: Path) -> None:
    assert cli.json("account", "set", "acme", "--daily-quota", "5")["daily_quota"] == 5
    bom = tmp_path / "excel.csv"
    bom.write_bytes(b"\xef\xbb\xbfa@example.com,manual\nb@example.com\n")
    assert cli.json("suppression", "import", "--account", "acme", str(bom))["imported"] == 2
    imported = cli.json("suppression", "import", "--account", "acme", "-", stdin=b"c@x.org\n")
    assert imported["imported"] == 1
    assert {s["address"] for s in cli.json("suppression", "list")} == {
        "a@example.com",
        "b@example.com",
        "c@x.org",
    }
    cli.json("key", "create", "--account", "acme")
    cli.json("identity", "add", "--account", "acme", "example.com", "--verified")
    cli.json("webhook", "add", "--account", "acme", "http://127.0.0.1:9/hook")
    store = open_store_at(Path(cli.json("init")["database"]))
    mid = new_message_id()
    store.admission.admit_sync(
        NewMessage(
            id=mid,
            account_id=1,
            channel="http",
            from_addr="a@example.com",
            sender_domain="example.com",
            subject="s",
            header_message_id=f"<{mid}@relay.test>",
            tags=(),
            body=b"Subject: s\r\n\r\nhi\r\n",
            recipients=(NewRecipient(address="r@example.net", kind="to"),),
            check_suppressions=False,
        ),
        limits=False,
    )
    store.close()
    [hook] = cli.json("webhook", "list")
    rotated = cli.json("webhook", "rotate-secret", hook["id"], "--grace", "60")
    assert ISO.fullmatch(rotated["previous_secret_expires_at"])
    outputs = [
        cli.json(*args)
        for args in (
            ("account", "list"),
            ("key", "list"),
            ("identity", "list"),
            ("dkim", "list"),
            ("dkim", "show", "example.com"),
            ("webhook", "list"),
            ("webhook", "show", hook["id"]),
            ("webhook", "attempts", hook["id"]),
            ("queue", "list"),
            ("queue", "show", mid),
            ("suppression", "list"),
            ("status",),
        )
    ]
    times = _times(outputs)
    assert len(times) > 15 and all(ISO.fullmatch(t) for t in times), times


def _times(value: Any, key: str = "") -> list[str]:
    """Every value of a time field (``…_at``, ``at``, ``…_since``, ``…timestamp``), and no number
    anywhere that looks like epoch seconds."""
    if isinstance(value, dict):
        return [t for k, v in value.items() for t in _times(v, k)]
    if isinstance(value, list):
        return [t for v in value for t in _times(v, key)]
    assert not (isinstance(value, int | float) and value > 1e8), (key, value)
    if re.search(r"(^at|_at|_since|timestamp)$", key) and value is not None:
        return [value]
    return []


def test_a_closed_pipe_ends_the_command_quietly(cli: Cli) -> None:
    proc = subprocess.Popen(
        [*relaygate_bin(), "--config", cli.config, "status"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # like `relaygate status | head -0`: nobody reads
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 141 and err == b""
