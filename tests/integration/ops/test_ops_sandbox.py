"""relaygate's runtime stack works inside the sandbox its systemd units declare.

Two restrictions are the ones most likely to break a Python service, so they are imposed for
real on a child interpreter (see ops_sandbox_probe.py), which then runs uvloop, a TLS handshake
on loopback, RSA/Ed25519 and DKIM signing, SQLite in WAL mode, Jinja2 and the metrics registry:

- ``MemoryDenyWriteExecute=yes``: W^X through ``prctl(PR_SET_MDWE)`` (Linux >= 6.3).
- ``SystemCallFilter=`` as written in the units, expanded with ``systemd-analyze syscall-filter``
  and loaded as a kill-on-violation seccomp allow list (Debian's python3-seccomp), as ``nobody``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
PROBE = HERE / "ops_sandbox_probe.py"
UNIT = HERE.parents[2] / "systemd" / "relaygate.service"


def run_probe(*args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, str(PROBE), *args], capture_output=True, text=True, timeout=60, check=False
    )
    if result.stdout.startswith("UNSUPPORTED"):
        pytest.skip(result.stdout.strip())
    return result


@cache
def expand(group: str) -> frozenset[str]:
    out = subprocess.run(
        ["systemd-analyze", "syscall-filter", group],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    names: set[str] = set()
    for line in out.splitlines()[1:]:
        item = line.strip()
        if not item or item.startswith("#"):
            continue
        names |= expand(item) if item.startswith("@") else {item}
    return frozenset(names)


def unit_syscall_allow_list() -> set[str]:
    """The allow list SystemCallFilter= lines in relaygate.service add up to."""
    allowed: set[str] = set()
    for line in UNIT.read_text().splitlines():
        if not line.startswith("SystemCallFilter="):
            continue
        value = line.partition("=")[2].strip()
        deny = value.startswith("~")
        items = value.removeprefix("~").split()
        names = set().union(*(expand(i) if i.startswith("@") else {i} for i in items))
        allowed = allowed - names if deny else allowed | names
    return allowed


def test_runtime_stack_under_memory_deny_write_execute() -> None:
    result = run_probe("mdwe")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("OK TLSv1."), result.stdout + result.stderr


def test_mdwe_probe_can_fail_cffi_callbacks_need_w_and_x() -> None:
    """Negative control: the one thing known to need W+X memory is refused in the same set-up."""
    result = run_probe("cffi-callback")
    assert result.stdout.strip() == "REFUSED", result.stdout + result.stderr


def test_runtime_stack_under_the_units_syscall_filter() -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed (Debian package: systemd)")
    allowed = unit_syscall_allow_list()
    assert "read" in allowed and "setuid" not in allowed and "setrlimit" not in allowed
    result = run_probe("seccomp", ",".join(sorted(allowed)))
    assert result.returncode == 0, (result.returncode, result.stdout + result.stderr)
    assert result.stdout.startswith("OK TLSv1."), result.stdout + result.stderr


def test_syscall_filter_probe_can_fail() -> None:
    """Negative control: without the socket calls the same probe is killed."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed (Debian package: systemd)")
    allowed = unit_syscall_allow_list() - {"socket", "connect", "bind", "listen"}
    result = run_probe("seccomp", ",".join(sorted(allowed)))
    assert result.returncode != 0
    assert "OK" not in result.stdout
