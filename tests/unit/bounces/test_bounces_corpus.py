"""The labelled corpus (shared/corpus): per-field accuracy floors, no non-bounce as bounce.

Scoring lives in bench/bounces_corpus_report.py (run it to see the figures and every miss);
this test loads it so both report the same numbers. Floors sit just below what the parser
reaches; see that script's output for the misses judged as label disagreements.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[3]

FLOORS = {
    "kind": 0.99,
    "recipient": 0.97,
    "hard_soft": 0.92,
    "status": 0.89,
    "reason": 0.84,
    "arf_feedback_type": 1.0,
    "arf_source_ip": 1.0,
    "arf_user_agent": 1.0,
}


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
def result() -> object:
    bench = _bench()
    corpus = bench.find_corpus(REPO)
    if corpus is None:
        pytest.skip("shared/corpus is not next to the repository (../shared/corpus)")
    return bench.evaluate(corpus)


@pytest.mark.parametrize("field", sorted(FLOORS))
def test_accuracy_floor(result: object, field: str) -> None:
    tally = result.fields[field]  # type: ignore[attr-defined]
    assert tally.total > 0
    assert tally.ratio >= FLOORS[field], f"{field}: {tally.hits}/{tally.total}"


def test_no_non_bounce_reported_as_bounce(result: object) -> None:
    assert result.non_bounce_reported_as_bounce == []  # type: ignore[attr-defined]


def test_corpus_is_complete(result: object) -> None:
    # Every labelled row was scored: a renamed or missing file would fail loudly elsewhere.
    assert result.fields["kind"].total >= 300  # type: ignore[attr-defined]
