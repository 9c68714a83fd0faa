"""Helpers for the end-to-end tests."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest


def read_only(state: Path, command: list[str]) -> list[str]:
    """``command`` run with ``state`` read-only: under root (whose writes permission bits do not
    stop) inside a mount namespace with a read-only bind mount, the error a read-only file
    system gives; otherwise with the write bits removed. Skips when root has no namespaces."""
    if os.geteuid() != 0:
        for path in [state, *state.rglob("*")]:
            path.chmod(path.stat().st_mode & ~0o222)
        return command
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("unshare is not installed (Debian package: util-linux)")
    probe = subprocess.run([unshare, "-m", "true"], capture_output=True, timeout=30)
    if probe.returncode != 0:
        pytest.skip("running as root without mount namespaces: cannot make a read-only state dir")
    script = 'mount --bind -o ro "$1" "$1" && shift && exec "$@"'
    return [unshare, "-m", "sh", "-c", script, "sh", str(state), *command]
