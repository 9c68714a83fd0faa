"""Lease owners: who holds a lease, and whether that process is known to be gone.

An owner is ``host:pid:random``. A restarted process on the same host can tell that a lease
belongs to a process that no longer exists and put the work back at once; owners on other
hosts (or alive) keep their leases until they expire.
"""

from __future__ import annotations

import os
import secrets


def new_owner() -> str:
    return f"{os.uname().nodename}:{os.getpid()}:{secrets.token_hex(4)}"


def is_dead_local_owner(owner: str) -> bool:
    """True only when ``owner`` was a process of this host that no longer exists."""
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != os.uname().nodename or not pid_text.isdigit() or int(pid_text) == os.getpid():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
