"""The labelled corpus (shared/corpus): per-field accuracy floors, no non-bounce as bounce.

Scoring lives in bench/bounces_corpus_report.py (run it to see the figures and every miss);
this test loads it so both report the same numbers. The corpus is split into the MTA families
the classifier's rules were written from ("development") and families held out from that work
(bench/bounces_heldout.txt, fixed before the rules were written): each set has its own floors,
just below what the parser reaches, so a change that helps one set by hurting the other shows.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[3]

FLOORS = {
    "development": {
        "kind": 0.99,
        "recipient": 0.98,
        "hard_soft": 0.96,
        "status": 0.95,
        "reason": 0.89,
        "arf_feedback_type": 1.0,
        "arf_source_ip": 1.0,
        "arf_user_agent": 1.0,
    },
    "heldout": {
        "kind": 1.0,
        "recipient": 0.96,
        "hard_soft": 0.88,
        "status": 0.83,
        "reason": 0.82,
    },
}
CASES = [(which, name) for which, floors in FLOORS.items() for name in sorted(floors)]


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "bounces_corpus_report", REPO / "bench" / "bounces_corpus_report.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def results() -> dict[str, object]:
    bench = _bench()
    corpus = bench.find_corpus(REPO)
    if corpus is None:
        pytest.skip("shared/corpus is not next to the repository (../shared/corpus)")
    return {which: bench.evaluate(corpus, which) for which in ("development", "heldout")}


@pytest.mark.parametrize(("which", "field"), CASES)
def test_accuracy_floor(results: dict[str, object], which: str, field: str) -> None:
    tally = results[which].fields[field]  # type: ignore[attr-defined]
    assert tally.total > 0
    assert tally.ratio >= FLOORS[which][field], f"{which} {field}: {tally.hits}/{tally.total}"


@pytest.mark.parametrize("which", sorted(FLOORS))
def test_no_non_bounce_reported_as_bounce(results: dict[str, object], which: str) -> None:
    assert results[which].non_bounce_reported_as_bounce == []  # type: ignore[attr-defined]


def test_corpus_is_complete(results: dict[str, object]) -> None:
    # Every labelled row was scored: a renamed or missing file would fail loudly elsewhere.
    kinds = [results[w].fields["kind"].total for w in FLOORS]  # type: ignore[attr-defined]
    assert sum(kinds) >= 300
    assert min(kinds) >= 100  # neither set is empty or tiny: the held-out list still matches
