"""Role locks and ready files on a state directory, between real processes (a POSIX lock never
conflicts within one process, so the other holder is a child process)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from relaygate.errors import StartupError
from relaygate.ops.runstate import STALE_AFTER, RoleLocks, RoleState, holder, lock_path, roles

HOLD = """
import json, sys
from pathlib import Path
from relaygate.ops.runstate import RoleLocks
locks = RoleLocks.acquire(Path(sys.argv[1]), tuple(sys.argv[2].split(",")))
if sys.argv[3]:
    locks.write_ready(json.loads(sys.argv[3]))
print("locked", flush=True)
sys.stdin.read()
locks.release()
print("released", flush=True)
"""


class Holder:
    def __init__(self, state: Path, roles_: str, ready: dict[str, object] | None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", HOLD, str(state), roles_, json.dumps(ready) if ready else ""],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline().strip() == "locked"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> str:
        out, _ = self.proc.communicate("", timeout=30)
        return out.strip()

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)


@pytest.fixture
def state(tmp_path: Path) -> Path:
    (tmp_path / "state").mkdir()
    return tmp_path / "state"


@pytest.fixture
def holders() -> Iterator[list[Holder]]:
    started: list[Holder] = []
    yield started
    for h in started:
        if h.proc.poll() is None:
            h.kill()


def test_a_held_role_is_refused_naming_the_holder(state: Path, holders: list[Holder]) -> None:
    h = Holder(state, "relay,webhooks", None)
    holders.append(h)
    assert holder(lock_path(state, "relay")) == h.pid and holder(lock_path(state, "http")) is None
    with pytest.raises(StartupError) as refused:
        RoleLocks.acquire(state, ("http", "smtp", "relay", "webhooks"))
    assert refused.value.problems == [
        f"roles relay, webhooks are already served on {state} by pid {h.pid}: stop it first"
        " (one process per role and state directory)"
    ]
    # the refusal took nothing: the other roles are free, the holder keeps its own
    mine = RoleLocks.acquire(state, ("http", "smtp"))
    assert holder(lock_path(state, "relay")) == h.pid
    mine.release()


def test_a_killed_holder_frees_its_roles(state: Path, holders: list[Holder]) -> None:
    h = Holder(state, "smtp", {"smtp": ["127.0.0.1:2525"], "heartbeat": 1.0, "started": 1.0})
    holders.append(h)
    h.kill()
    assert holder(lock_path(state, "smtp")) is None
    assert roles(state, now=2.0)[1].state == RoleState.STOPPED  # its ready file is not believed
    RoleLocks.acquire(state, ("smtp",)).release()


def test_status_of_each_role(state: Path, holders: list[Holder]) -> None:
    now = 1_790_000_000.0
    http = Holder(
        state, "http", {"http": "127.0.0.1:8025", "started": now - 60, "heartbeat": now - 5}
    )
    relay = Holder(state, "relay", {"started": now - 600, "heartbeat": now - STALE_AFTER - 1})
    hooks = Holder(state, "webhooks", {"started": now, "heartbeat": now, "store_ok": False})
    smtp = Holder(state, "smtp", None)  # locked, listeners not up yet
    holders.extend([http, relay, hooks, smtp])
    found = {r.role: r for r in roles(state, now=now)}
    assert found["http"].state == RoleState.RUNNING and found["http"].pid == http.pid
    assert found["http"].addresses == {"http": "127.0.0.1:8025"}
    assert found["http"].started_at == "2026-09-21T14:12:20Z"
    assert found["relay"].state == RoleState.STALLED and found["relay"].pid == relay.pid
    assert found["webhooks"].state == RoleState.STORE_BUSY
    assert found["smtp"].state == RoleState.STARTING and found["smtp"].pid == smtp.pid
    assert relay.stop() == "released"
    assert {r.role: r.state for r in roles(state, now=now)}["relay"] == RoleState.STOPPED
    assert not (state / "run" / "relay.json").exists()  # its own ready file went with it
    assert (state / "run" / "http.json").exists()


def test_release_removes_only_its_own_ready_files(state: Path) -> None:
    locks = RoleLocks.acquire(state, ("http",))
    locks.write_ready({"started": 1.0, "heartbeat": 1.0})
    ready = state / "run" / "http.json"
    assert json.loads(ready.read_text())["pid"] == os.getpid()
    ready.write_text(json.dumps({"pid": os.getpid() + 1}))  # someone else's
    locks.release()
    assert ready.exists()


def test_an_unwritable_run_directory_is_one_clear_problem(state: Path) -> None:
    (state / "run").write_text("a file where the directory should be")
    with pytest.raises(StartupError, match=r"state/run: not a directory"):
        RoleLocks.acquire(state, ("http",))
