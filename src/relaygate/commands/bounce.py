"""``relaygate bounce parse FILE... [--json]``: what relaygate understands of saved reports.

The command-line face of ``relaygate.bounces.parse``: read saved report messages (.eml), parse
each one and print what relaygate would record: per file its kind (``bounce``, ``complaint``,
``delay`` for a report that only says delivery is delayed, which changes nothing, or ``other``)
and the reporting MTA; per recipient the DSN action, status, hard or soft, the reason and the
diagnostic. ``--json`` is the top-level flag and is also accepted after the subcommand. Exit
status 0 only if every file could be read.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

from relaygate.bounces.parse import Report, parse_message

_MAX_FILE = 50 * 1024 * 1024


def register(subparsers: Any) -> None:
    """Add ``bounce parse`` to the top-level command parser."""
    bounce = subparsers.add_parser("bounce", help="inspect bounce and complaint reports")
    actions = bounce.add_subparsers(dest="bounce_command", metavar="COMMAND", required=True)
    parse = actions.add_parser(
        "parse",
        help="parse saved DSN/ARF messages and show the per-recipient results",
        description="Parse saved bounce (DSN) and complaint (ARF) messages and show what "
        "relaygate would record for each recipient.",
    )
    parse.add_argument("files", nargs="+", metavar="FILE", help="a saved message (.eml)")
    parse.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS,
        help="print one JSON array, one object per file",
    )
    parse.set_defaults(func=handle_parse)


def handle_parse(args: argparse.Namespace) -> int:
    """Run ``bounce parse``; returns the exit status."""
    return run_parse(list(args.files), as_json=bool(getattr(args, "json", False)), out=sys.stdout)


def run_parse(files: list[str], *, as_json: bool, out: TextIO) -> int:
    results: list[dict[str, Any]] = []
    ok = True
    for name in files:
        try:
            with open(name, "rb") as fh:
                raw = fh.read(_MAX_FILE + 1)
        except OSError as exc:
            ok = False
            reason = exc.strerror or exc.__class__.__name__
            results.append({"file": name, "kind": "other", "recipients": [], "error": reason})
            continue
        if len(raw) > _MAX_FILE:
            ok = False
            results.append(
                {"file": name, "kind": "other", "recipients": [], "error": "file too large"}
            )
            continue
        results.append(_as_dict(name, parse_message(raw)))
    if as_json:
        out.write(json.dumps(results, ensure_ascii=False) + "\n")
    else:
        _table(results, out)
    return 0 if ok else 1


def kind_of(report: Report) -> str:
    """What the report is to the operator: ``delay`` for a bounce report whose every row is a
    delay notice (relaygate records nothing for those: the message is still being tried), else
    the parser's kind (``bounce``, ``complaint``, ``other``)."""
    rows = report.recipients
    if report.kind == "bounce" and rows and all(r.action == "delayed" for r in rows):
        return "delay"
    return report.kind


def _as_dict(name: str, report: Report) -> dict[str, Any]:
    return {
        "file": name,
        "kind": kind_of(report),
        "reporting_mta": report.reporting_mta,
        "feedback_type": report.feedback_type,
        "recipients": [
            {
                "recipient": r.recipient,
                "action": r.action,
                "status": r.status,
                "bounce_type": r.bounce_type,
                "reason": r.reason,
                "remote_mta": r.remote_mta,
                "diagnostic": r.diagnostic,
            }
            for r in report.recipients
        ],
    }


def _table(results: list[dict[str, Any]], out: TextIO) -> None:
    header = (
        "FILE",
        "KIND",
        "RECIPIENT",
        "ACTION",
        "STATUS",
        "TYPE",
        "REASON",
        "REPORTED-BY",
        "DIAGNOSTIC",
    )
    rows: list[tuple[str, ...]] = []
    for item in results:
        if "error" in item:
            rows.append((item["file"], item["kind"], *("-" * 6), f"error: {item['error']}"))
            continue
        recipients = item["recipients"] or [{}]
        for r in recipients:
            diag = " ".join(str(r.get("diagnostic", "")).split())
            rows.append(
                (
                    item["file"],
                    item["kind"],
                    r.get("recipient") or "-",
                    r.get("action") or "-",
                    r.get("status") or "-",
                    r.get("bounce_type") or "-",
                    r.get("reason") or "-",
                    item.get("reporting_mta") or r.get("remote_mta") or "-",
                    diag[:60] + ("…" if len(diag) > 60 else ""),
                )
            )
    widths = [
        max(len(h), *(len(row[i]) for row in rows)) if rows else len(h)
        for i, h in enumerate(header)
    ]
    for row in (header, *rows):
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])]
        out.write("  ".join([*cells, row[-1]]).rstrip() + "\n")
