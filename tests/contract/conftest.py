"""The store contract suite runs once per backend: ``BACKENDS`` names them, and ``store`` (with
``another``, a second process's view of the same data) opens one through the interface.

PostgreSQL joins by adding its name here and a branch in ``_open`` (issue 17). The tests in
this directory use ``relaygate.store.api.Store`` only: no SQL, no backend class, no private
method.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from relaygate.clock import FakeClock
from relaygate.store import Store, open_store_at

BACKENDS = ("sqlite",)


def _open(backend: str, where: Path, clock: FakeClock) -> Store:
    if backend == "sqlite":
        return open_store_at(where / "relaygate.sqlite3", clock=clock)
    raise AssertionError(f"unknown backend {backend}")


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def open_view(backend: str, tmp_path: Path) -> Iterator[Callable[[FakeClock], Store]]:
    """Opens another store on the same data (another process), with its own clock."""
    opened: list[Store] = []

    def open_one(clock: FakeClock) -> Store:
        s = _open(backend, tmp_path, clock)
        s.start_writer()
        opened.append(s)
        return s

    yield open_one
    for s in opened:
        s.close()


@pytest.fixture
def store(open_view: Callable[[FakeClock], Store], clock: FakeClock) -> Store:
    return open_view(clock)


@pytest.fixture
def another(open_view: Callable[[FakeClock], Store], clock: FakeClock, store: Store) -> Store:
    return open_view(clock)
