"""Score relaygate.bounces.parse_message against the labelled corpus in shared/corpus.

Usage: .venv/bin/python bench/bounces_corpus_report.py [CORPUS_DIR] [--set all|development|heldout]
       [--misses]

Prints one JSON line with per-field accuracy; with --misses, then one line per miss. The corpus
defaults to shared/corpus next to the repository (or next to one of its ancestors).
tests/unit/bounces/test_bounces_corpus.py loads `evaluate` from this file, so the figures here are
the ones the tests assert.

`--set heldout` scores only the MTA families listed in bench/bounces_heldout.txt (fixed before the
rules were written from the others), `--set development` the rest (arf/ included), `all` everything.
The status, hard_soft and reason fields count the labelled bounce recipients the parser found (a
recipient not found is a `recipient` miss, not three more).
"""

from __future__ import annotations

import csv
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from relaygate.bounces.parse import Report, parse_message

HELDOUT_LIST = Path(__file__).resolve().parent / "bounces_heldout.txt"
SETS = ("all", "development", "heldout")


def heldout_families(path: Path = HELDOUT_LIST) -> set[tuple[str, str]]:
    """(corpus, family) pairs from bounces_heldout.txt."""
    out: set[tuple[str, str]] = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            corpus, family = line.split()
            out.add((corpus, family))
    return out


def family(name: str) -> str:
    """`maildir/bsd/lhost-exim-03.eml` -> `lhost-exim`; `data/yahoo_07.txt` -> `yahoo`."""
    stem = Path(name).stem
    for sep in ("-", "_"):
        head, _, tail = stem.rpartition(sep)
        if head and tail.isdigit():
            return head
    return stem


class Selection:
    """Which files a run scores: all, the held-out families, or the rest."""

    def __init__(self, which: str = "all") -> None:
        if which not in SETS:
            raise ValueError(f"set must be one of {', '.join(SETS)}")
        self.which = which
        self.heldout = heldout_families() if which != "all" else set()

    def wants(self, corpus: str, name: str) -> bool:
        if self.which == "all":
            return True
        held = (corpus, family(name)) in self.heldout
        return held if self.which == "heldout" else not held


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


def evaluate(corpus: Path, which: str = "all") -> Result:
    res = Result()
    cache: dict[Path, Report] = {}
    sel = Selection(which)
    _sisimai(corpus / "sisimai", res, cache, sel)
    _flufl(corpus / "flufl-bounce", res, cache, sel)
    if which != "heldout":
        _arf(corpus / "arf", res, cache)
    return res


def _sisimai(base: Path, res: Result, cache: dict[Path, Report], sel: Selection) -> None:
    rows = [r for r in _rows(base / "truth.tsv") if sel.wants("sisimai", r["file"])]
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
        if row["kind"] != "bounce" or idx is None:
            continue
        got = report.recipients[idx]
        res.tally(
            "status",
            got.status == row["status"],
            {"file": where, "want": row["status"], "got": got.status},
        )
        want_type = "hard" if row["hard"] == "1" else "soft"
        res.tally(
            "hard_soft",
            got.bounce_type == want_type,
            {
                "file": where,
                "want": want_type,
                "got": got.bounce_type,
                "diag": got.diagnostic[:160],
            },
        )
        res.tally(
            "reason",
            got.reason == row["reason"],
            {
                "file": where,
                "want": row["reason"],
                "got": got.reason,
                "diag": got.diagnostic[:160],
            },
        )


def _flufl(base: Path, res: Result, cache: dict[Path, Report], sel: Selection) -> None:
    rows = [r for r in _rows(base / "truth.tsv") if sel.wants("flufl", r["file"])]
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
        if row["temporary"] == "1" and idx is not None:
            got_type = report.recipients[idx].bounce_type
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
    which = "all"
    args: list[str] = []
    it = iter(argv)
    for a in it:
        if a == "--set":
            which = next(it, "")
        elif a.startswith("--set="):
            which = a.partition("=")[2]
        elif not a.startswith("--"):
            args.append(a)
    if which not in SETS:
        print(f"--set must be one of {', '.join(SETS)}", file=sys.stderr)
        return 2
    corpus = Path(args[0]) if args else find_corpus(Path(__file__).resolve().parents[1])
    if corpus is None:
        print("shared/corpus not found next to the repository", file=sys.stderr)
        return 2
    result = evaluate(corpus, which)
    print(json.dumps(result.summary(), sort_keys=True))
    if "--misses" in argv:
        for miss in result.misses:
            print(json.dumps(miss, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
