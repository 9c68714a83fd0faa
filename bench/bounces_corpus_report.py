"""Score relaygate.bounces.parse_message against the labelled corpus in shared/corpus.

Usage: .venv/bin/python bench/bounces_corpus_report.py [CORPUS_DIR] [--misses]

Prints one JSON line with per-field accuracy; with --misses, then one line per miss. The corpus
defaults to shared/corpus next to the repository (or next to one of its ancestors). tests/unit/bounces/test_bounces_corpus.py
loads `evaluate` from this file, so the figures here are the ones the tests assert.
"""

from __future__ import annotations

import csv
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from relaygate.bounces.parse import Report, parse_message


def find_corpus(repo_root: Path) -> Path | None:
    """shared/corpus next to the repository (CI), or next to an ancestor (git worktrees)."""
    for base in repo_root.resolve().parents:
        candidate = base / "shared" / "corpus"
        if (candidate / "sisimai" / "truth.tsv").is_file():
            return candidate
    return None


@dataclass
class Tally:
    hits: int = 0
    total: int = 0

    def add(self, ok: bool) -> None:
        self.total += 1
        self.hits += int(ok)

    @property
    def ratio(self) -> float:
        return self.hits / self.total if self.total else 1.0


@dataclass
class Result:
    fields: dict[str, Tally] = field(default_factory=dict)
    misses: list[dict[str, str]] = field(default_factory=list)
    non_bounce_reported_as_bounce: list[str] = field(default_factory=list)

    def tally(self, name: str, ok: bool, miss: dict[str, str] | None = None) -> None:
        self.fields.setdefault(name, Tally()).add(ok)
        if not ok and miss is not None:
            self.misses.append({"field": name, **miss})

    def summary(self) -> dict[str, object]:
        out: dict[str, object] = {
            name: {"accuracy": round(t.ratio, 4), "hits": t.hits, "total": t.total}
            for name, t in sorted(self.fields.items())
        }
        out["non_bounce_reported_as_bounce"] = self.non_bounce_reported_as_bounce
        out["misses"] = len(self.misses)
        return out


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def _find(report: Report, *names: str) -> int | None:
    wanted = {n.lower() for n in names if n}
    for i, r in enumerate(report.recipients):
        if r.recipient in wanted or (r.original_recipient and r.original_recipient in wanted):
            return i
    return None


def _parse(path: Path, cache: dict[Path, Report]) -> Report:
    if path not in cache:
        cache[path] = parse_message(path.read_bytes())
    return cache[path]


def evaluate(corpus: Path) -> Result:
    res = Result()
    cache: dict[Path, Report] = {}
    _sisimai(corpus / "sisimai", res, cache)
    _flufl(corpus / "flufl-bounce", res, cache)
    _arf(corpus / "arf", res, cache)
    return res


def _sisimai(base: Path, res: Result, cache: dict[Path, Report]) -> None:
    rows = _rows(base / "truth.tsv")
    kinds: dict[str, str] = {}
    for row in rows:
        kinds[row["file"]] = row["kind"]
    for name, kind in kinds.items():
        report = _parse(base / name, cache)
        res.tally(
            "kind",
            report.kind == kind,
            {"file": f"sisimai/{name}", "want": kind, "got": report.kind},
        )
        if kind != "bounce" and report.kind == "bounce":
            res.non_bounce_reported_as_bounce.append(f"sisimai/{name}")
    for row in rows:
        report = _parse(base / row["file"], cache)
        where = f"sisimai/{row['file']}"
        want = row["recipient"]
        if not want:
            continue
        idx = _find(report, want, row.get("alias", ""))
        got_all = ",".join(r.recipient for r in report.recipients)
        res.tally("recipient", idx is not None, {"file": where, "want": want, "got": got_all})
        if row["kind"] != "bounce":
            continue
        got = report.recipients[idx] if idx is not None else None
        res.tally(
            "status",
            got is not None and got.status == row["status"],
            {"file": where, "want": row["status"], "got": got.status if got else "-"},
        )
        want_type = "hard" if row["hard"] == "1" else "soft"
        got_type = got.bounce_type if got else "-"
        res.tally(
            "hard_soft",
            got_type == want_type,
            {
                "file": where,
                "want": want_type,
                "got": got_type,
                "diag": got.diagnostic[:160] if got else "",
            },
        )
        res.tally(
            "reason",
            got is not None and got.reason == row["reason"],
            {
                "file": where,
                "want": row["reason"],
                "got": got.reason if got else "-",
                "diag": got.diagnostic[:160] if got else "",
            },
        )


def _flufl(base: Path, res: Result, cache: dict[Path, Report]) -> None:
    rows = _rows(base / "truth.tsv")
    labelled = {row["file"] for row in rows if row["recipient"]}
    for name in sorted(labelled):
        report = _parse(base / name, cache)
        res.tally(
            "kind",
            report.kind == "bounce",
            {"file": f"flufl/{name}", "want": "bounce", "got": report.kind},
        )
    for row in rows:
        if not row["recipient"]:
            continue
        report = _parse(base / row["file"], cache)
        where = f"flufl/{row['file']}"
        idx = _find(report, row["recipient"])
        got_all = ",".join(r.recipient for r in report.recipients)
        res.tally(
            "recipient",
            idx is not None,
            {"file": where, "want": row["recipient"].lower(), "got": got_all},
        )
        if row["temporary"] == "1":
            got_type = report.recipients[idx].bounce_type if idx is not None else "-"
            res.tally(
                "hard_soft", got_type == "soft", {"file": where, "want": "soft", "got": got_type}
            )


def _arf(base: Path, res: Result, cache: dict[Path, Report]) -> None:
    for row in _rows(base / "truth.tsv"):
        report = _parse(base / row["file"], cache)
        where = f"arf/{row['file']}"
        res.tally(
            "kind",
            report.kind == "complaint",
            {"file": where, "want": "complaint", "got": report.kind},
        )
        if report.kind == "bounce":
            res.non_bounce_reported_as_bounce.append(where)
        if row["recipient"]:
            idx = _find(report, row["recipient"])
            res.tally(
                "recipient",
                idx is not None,
                {
                    "file": where,
                    "want": row["recipient"],
                    "got": ",".join(r.recipient for r in report.recipients),
                },
            )
        for name in ("feedback_type", "source_ip", "user_agent"):
            if row[name]:
                got = str(getattr(report, name))
                res.tally(
                    f"arf_{name}",
                    got.lower() == row[name].lower(),
                    {"file": where, "want": row[name], "got": got},
                )


def main(argv: list[str]) -> int:
    args = [a for a in argv if not a.startswith("--")]
    corpus = Path(args[0]) if args else find_corpus(Path(__file__).resolve().parents[1])
    if corpus is None:
        print("shared/corpus not found next to the repository", file=sys.stderr)
        return 2
    result = evaluate(corpus)
    print(json.dumps(result.summary(), sort_keys=True))
    if "--misses" in argv:
        for miss in result.misses:
            print(json.dumps(miss, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
