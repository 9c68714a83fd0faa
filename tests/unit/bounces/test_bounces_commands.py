"""`relaygate bounce parse FILE... [--json]` through a parser built like the entry point's."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from relaygate.commands.bounce import register

BOUNCE = b"""From: MAILER-DAEMON@mx.example.net
To: b-token@bounces.sender.example
Subject: failure notice

Hi. This is the qmail-send program at mx.example.net.
I'm afraid I wasn't able to deliver your message to the following addresses.
This is a permanent error; I've given up. Sorry it didn't work out.

<nobody@example.net>:
Sorry, no mailbox here by that name. (#5.1.1)

--- Below this line is a copy of the message.

From: app@sender.example
To: nobody@example.net
Subject: hi
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="relaygate")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    subparsers = parser.add_subparsers(dest="command", required=True)
    register(subparsers)
    return parser


def _run(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    return int(args.func(args))


@pytest.fixture
def files(tmp_path: Path) -> tuple[str, str]:
    bounce = tmp_path / "bounce.eml"
    bounce.write_bytes(BOUNCE)
    plain = tmp_path / "plain.eml"
    plain.write_bytes(b"From: a@b.example\r\nSubject: hi\r\n\r\nhello\r\n")
    return str(bounce), str(plain)


@pytest.mark.parametrize("position", ["global", "after"])
def test_json_in_either_position(
    position: str, files: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    bounce, plain = files
    argv = ["--json", "bounce", "parse", bounce, plain]
    if position == "after":
        argv = ["bounce", "parse", bounce, plain, "--json"]
    assert _run(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out == [
        {
            "file": bounce,
            "kind": "bounce",
            "reporting_mta": out[0]["reporting_mta"],
            "feedback_type": "",
            "recipients": [
                {
                    "recipient": "nobody@example.net",
                    "action": "failed",
                    "status": "5.1.1",
                    "bounce_type": "hard",
                    "reason": "userunknown",
                    "remote_mta": out[0]["recipients"][0]["remote_mta"],
                    "diagnostic": out[0]["recipients"][0]["diagnostic"],
                }
            ],
        },
        {
            "file": plain,
            "kind": "other",
            "reporting_mta": "",
            "feedback_type": "",
            "recipients": [],
        },
    ]
    assert "no mailbox here" in out[0]["recipients"][0]["diagnostic"]


def test_unreadable_file_gets_an_error_object_and_exit_1(
    files: tuple[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = str(tmp_path / "missing.eml")
    assert _run(["--json", "bounce", "parse", files[0], missing]) == 1
    out = json.loads(capsys.readouterr().out)
    assert [o["file"] for o in out] == [files[0], missing]
    assert out[1]["kind"] == "other"
    assert out[1]["recipients"] == []
    assert out[1]["error"]


def test_human_table(files: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(["bounce", "parse", *files]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:8] == [
        "FILE",
        "KIND",
        "RECIPIENT",
        "ACTION",
        "STATUS",
        "TYPE",
        "REASON",
        "REPORTED-BY",
    ]
    assert lines[1].split()[1:7] == [
        "bounce",
        "nobody@example.net",
        "failed",
        "5.1.1",
        "hard",
        "userunknown",
    ]
    assert files[1] in lines[2] and "other" in lines[2]


def test_parse_requires_a_file() -> None:
    with pytest.raises(SystemExit):
        _parser().parse_args(["bounce", "parse"])


DELAYED = b"""From: MAILER-DAEMON@mx.example.net
To: b-token@bounces.sender.example
Subject: Delivery delayed
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B"

--B
Content-Type: text/plain

Your message has not been delivered yet. The server will keep trying.

--B
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net
Arrival-Date: Mon, 1 Jun 2026 10:00:00 +0000

Final-Recipient: rfc822; slow@example.org
Action: delayed
Status: 4.4.1
Remote-MTA: dns; mx.example.org
Diagnostic-Code: smtp; 421 4.4.1 connection timed out
Will-Retry-Until: Fri, 5 Jun 2026 10:00:00 +0000

--B--
"""


def test_a_delay_notice_is_shown_as_a_delay_with_its_action_and_mta(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    delayed = tmp_path / "delayed.eml"
    delayed.write_bytes(DELAYED.replace(b"\n", b"\r\n"))
    assert _run(["--json", "bounce", "parse", str(delayed)]) == 0
    [item] = json.loads(capsys.readouterr().out)
    assert item["kind"] == "delay" and item["reporting_mta"] == "mx.example.net"
    [row] = item["recipients"]
    assert row["action"] == "delayed" and row["status"] == "4.4.1"
    assert row["remote_mta"] == "mx.example.org"
    assert _run(["bounce", "parse", str(delayed)]) == 0
    line = capsys.readouterr().out.splitlines()[1].split()
    assert line[1:4] == ["delay", "slow@example.org", "delayed"] and "mx.example.net" in line
