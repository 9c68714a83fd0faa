"""Which ``relaygate serve`` processes run on a state directory, role by role.

Owns ``<state_dir>/run/``: per role, a lock file (``<role>.lock``) and a ready file
(``<role>.json``).

* A process that serves a role holds a POSIX write lock on that role's lock file for its whole
  life; the kernel drops it when the process ends, however it ends (SIGKILL included), so there
  is no stale pid file to clean up. A second process of the same role on the same state
  directory cannot take the lock and is refused, told which pid holds it (``F_GETLK``). Split
  roles (``serve --role …``, one unit each) share the state directory: the lock is per role.
* Once its listeners are up, the process writes a ready file per role (atomically): its pid, the
  roles it serves, its addresses, when it started, and a heartbeat it rewrites every
  ``HEARTBEAT_SECONDS`` with whether the store answered. It removes only its own ready files
  when it stops.
* ``roles(state_dir, now=…)`` reads both, for ``relaygate status``: per role, who holds it and
  whether it is running, starting, stalled (no heartbeat for ``STALE_AFTER`` seconds), running
  with its store busy, or stopped. Reading never takes a lock.

Trusts: the files in ``run/`` (written by relaygate processes of the same user); a ready file
that cannot be parsed reads as absent.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import struct
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from relaygate.clock import iso
from relaygate.errors import StartupError
from relaygate.settings import ROLES

__all__ = [
    "HEARTBEAT_SECONDS",
    "STALE_AFTER",
    "RoleLocks",
    "RoleState",
    "RoleStatus",
    "holder",
    "roles",
]

#: How often a running process rewrites its ready files.
HEARTBEAT_SECONDS = 15.0
#: A heartbeat older than this means the process has stopped answering.
STALE_AFTER = 3 * HEARTBEAT_SECONDS

# struct flock on Linux (x86-64, arm64): l_type, l_whence, l_start, l_len, l_pid, padding.
_FLOCK = "hhqqi4x"


class RoleState(StrEnum):
    RUNNING = "running"
    STORE_BUSY = "store_busy"
    STARTING = "starting"
    STALLED = "stalled"
    STOPPED = "stopped"


@dataclass(frozen=True, kw_only=True)
class RoleStatus:
    """One role on a state directory, as ``relaygate status`` shows it."""

    role: str
    state: RoleState
    pid: int | None = None
    roles: tuple[str, ...] = ()  # every role of that process
    addresses: dict[str, Any] = field(default_factory=dict)
    started_at: str | None = None
    heartbeat_at: str | None = None


def run_dir(state_dir: Path) -> Path:
    return state_dir / "run"


def lock_path(state_dir: Path, role: str) -> Path:
    return run_dir(state_dir) / f"{role}.lock"


def ready_path(state_dir: Path, role: str) -> Path:
    return run_dir(state_dir) / f"{role}.json"


def holder(path: Path) -> int | None:
    """The pid of the process holding the lock on ``path``, or None (never takes the lock)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        query = struct.pack(_FLOCK, fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0)
        answer = fcntl.fcntl(fd, fcntl.F_GETLK, query)
        l_type, _, _, _, pid = struct.unpack(_FLOCK, answer)
    except OSError:
        return None
    finally:
        os.close(fd)  # this process holds no lock on it: closing releases nothing
    return int(pid) if l_type != fcntl.F_UNLCK else None


class RoleLocks:
    """The role locks this process holds (see the module docstring)."""

    def __init__(self, state_dir: Path, fds: dict[str, int]) -> None:
        self.state_dir = state_dir
        self._fds = fds
        self.pid = os.getpid()

    @classmethod
    def acquire(cls, state_dir: Path, roles: tuple[str, ...]) -> RoleLocks:
        """Lock every role in ``roles``, or none: StartupError names each role held elsewhere."""
        fds: dict[str, int] = {}
        held: dict[int | None, list[str]] = {}
        try:
            run_dir(state_dir).mkdir(exist_ok=True)
        except FileExistsError:
            raise StartupError(
                [f"{run_dir(state_dir)}: not a directory (relaygate keeps its run files there)"]
            ) from None
        except OSError as exc:
            raise StartupError([_unwritable(run_dir(state_dir), exc)]) from None
        for role in roles:
            path = lock_path(state_dir, role)
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o640)
            except OSError as exc:
                for fd in fds.values():
                    os.close(fd)
                raise StartupError([_unwritable(path, exc)]) from None
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                held.setdefault(holder(path), []).append(role)
                continue
            fds[role] = fd
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        if held:
            for fd in fds.values():
                os.close(fd)
            raise StartupError(
                [
                    f"{'roles' if len(names) > 1 else 'role'} {', '.join(names)}"
                    f" {'are' if len(names) > 1 else 'is'} already served on {state_dir} by"
                    f" {f'pid {pid}' if pid is not None else 'another process'}: stop it first"
                    " (one process per role and state directory)"
                    for pid, names in held.items()
                ]
            )
        return cls(state_dir, fds)

    @property
    def roles(self) -> tuple[str, ...]:
        return tuple(self._fds)

    def write_ready(self, info: dict[str, Any]) -> None:
        """Write (or rewrite: the heartbeat) every held role's ready file, atomically."""
        body = json.dumps({"pid": self.pid, "roles": list(self._fds), **info})
        for role in self._fds:
            path = ready_path(self.state_dir, role)
            tmp = path.with_name(f".{role}.{self.pid}.tmp")
            tmp.write_text(body)
            os.replace(tmp, path)

    def release(self) -> None:
        """Remove this process's ready files, then drop the locks."""
        for role, fd in self._fds.items():
            path = ready_path(self.state_dir, role)
            with contextlib.suppress(OSError, ValueError):
                if json.loads(path.read_text()).get("pid") == self.pid:
                    path.unlink()
            os.close(fd)
        self._fds = {}


def _unwritable(path: Path, exc: OSError) -> str:
    reason = exc.strerror or str(exc)
    return f"{path}: cannot write ({reason}): the state directory must be writable by relaygate"


def _ready(state_dir: Path, role: str) -> dict[str, Any] | None:
    try:
        data = json.loads(ready_path(state_dir, role).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def roles(state_dir: Path, *, now: float) -> list[RoleStatus]:
    """Every role's state on ``state_dir`` at ``now`` (epoch seconds)."""
    out: list[RoleStatus] = []
    for role in ROLES:
        pid = holder(lock_path(state_dir, role))
        if pid is None:
            out.append(RoleStatus(role=role, state=RoleState.STOPPED))
            continue
        info = _ready(state_dir, role)
        if info is None or info.get("pid") != pid:
            out.append(RoleStatus(role=role, state=RoleState.STARTING, pid=pid))
            continue
        beat = info.get("heartbeat")
        if not isinstance(beat, int | float) or now - beat > STALE_AFTER:
            state = RoleState.STALLED
        elif info.get("store_ok") is False:
            state = RoleState.STORE_BUSY
        else:
            state = RoleState.RUNNING
        started = info.get("started")
        out.append(
            RoleStatus(
                role=role,
                state=state,
                pid=pid,
                roles=tuple(str(r) for r in info.get("roles", [])),
                addresses={k: info[k] for k in ("http", "smtp", "smtps", "metrics") if info.get(k)},
                started_at=iso(started) if isinstance(started, int | float) else None,
                heartbeat_at=iso(beat) if isinstance(beat, int | float) else None,
            )
        )
    return out
