"""The SQLite search takes one of two ways (start from a rare filter's matches, or walk the
account's messages newest first); both give the contract's answers."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from relaygate.clock import FakeClock
from relaygate.store.sqlite import SqliteStore, messages

_spec = importlib.util.spec_from_file_location(
    "contract_search", Path(__file__).parents[2] / "contract" / "test_contract_search.py"
)
assert _spec and _spec.loader
contract = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(contract)


@pytest.mark.parametrize("drive_limit", [0, 10_000])
def test_both_ways_answer_alike(
    store: SqliteStore, clock: FakeClock, monkeypatch: pytest.MonkeyPatch, drive_limit: int
) -> None:
    monkeypatch.setattr(messages, "DRIVE_LIMIT", drive_limit)
    contract.check_search(store, clock)
