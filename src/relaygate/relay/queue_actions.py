"""What an operator does to the delivery queue: retry, hold, release, delete.

The one code path for these actions, whoever asks (the command line today; the management API
and the dashboard call the same function). Recipients are named by message id (``msg_…``, all
its recipients), by recipient id, by destination domain, or all at once; only those in a state
the action applies to are changed. Every named id must exist (else ``RequestError(404)`` and
nothing changes); an id that exists but has nothing to act on is not an error, it counts 0.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from relaygate.errors import RequestError
from relaygate.store import Store
from relaygate.store.states import State

#: Each action and the recipient states it applies to.
ACTIONS: dict[str, tuple[str, ...]] = {
    "retry": ("queued", "deferred"),
    "hold": ("queued", "deferred"),
    "release": ("held",),
    "delete": ("queued", "deferred", "held"),
}

_ANY_STATE = tuple(s.value for s in State)


@dataclass(frozen=True, kw_only=True)
class Acted:
    """``matched`` recipients were in a state the action applies to; ``changed`` of them moved."""

    action: str
    matched: int
    changed: int


def act(
    store: Store,
    action: str,
    *,
    ids: Sequence[str] = (),
    domain: str | None = None,
    everything: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> Acted:
    """Apply ``action`` to the recipients named; ``progress(done, total)`` as chunks commit."""
    states = ACTIONS.get(action)
    if states is None:
        raise RequestError(400, f"action must be one of {', '.join(ACTIONS)}")
    if not ids and not everything and domain is None:
        raise RequestError(400, "name message or recipient ids, a domain, or all")
    unknown = [i for i in ids if not store.queue.select(ids=[i], states=_ANY_STATE)]
    if unknown:
        noun = "message or recipient" if len(unknown) == 1 else "messages or recipients"
        raise RequestError(404, f"no {noun} {', '.join(unknown)}")
    chosen = store.queue.select(ids=ids, domain=domain, states=states)
    total = len(chosen)
    changed = store.queue.operate(
        chosen, action, progress=(lambda done: progress(done, total)) if progress else None
    )
    return Acted(action=action, matched=total, changed=changed)
