from __future__ import annotations

import itertools

import pytest

from relaygate.errors import IllegalTransition
from relaygate.store.sqlite import SqliteStore as Store
from relaygate.store.states import ALLOWED, FINAL, State, allowed, message_state


def test_final_states_only_leave_for_late_reports() -> None:
    for src, dst in ALLOWED:
        if src in FINAL:
            assert (src, dst) in {
                (State.DELIVERED, State.BOUNCED),
                (State.DELIVERED, State.COMPLAINED),
            }


def test_nothing_goes_back_to_queued_from_a_final_state() -> None:
    for src in FINAL:
        assert not allowed(src, State.QUEUED)
        assert not allowed(src, State.ACTIVE)


@pytest.mark.parametrize(
    ("states", "expected"),
    [
        (["delivered", "delivered"], "delivered"),
        (["delivered", "deferred"], "deferred"),
        (["active"], "queued"),
        (["bounced", "delivered"], "delivered"),
        (["held", "delivered"], "held"),
    ],
)
def test_message_state_is_derived(states: list[str], expected: str) -> None:
    assert message_state(states) == expected


def test_illegal_transitions_are_refused(store: Store, sender: dict) -> None:  # type: ignore[type-arg]
    from relaygate.store.models import NewMessage, NewRecipient

    store.admission.admit_sync(
        NewMessage(
            id="msg_" + "0" * 32,
            account_id=sender["account"].id,
            channel="http",
            from_addr="a@example.com",
            sender_domain="example.com",
            subject="s",
            header_message_id="<x@y>",
            tags=(),
            body=b"x",
            recipients=(NewRecipient(address="r@dest.test", kind="to"),),
            check_suppressions=False,
        )
    )
    rid = store.messages.recipients("msg_" + "0" * 32)[0].id
    illegal = [(a, b) for a, b in itertools.product(State, State) if not allowed(a, b)]
    assert (State.QUEUED, State.DELIVERED) in illegal
    for src, dst in illegal:
        with pytest.raises(IllegalTransition):
            store.queue.transition(rid, src, dst, event_type="x")
    # A legal transition from the wrong current state is a refused compare-and-set, not a change.
    assert store.queue.transition(rid, State.DEFERRED, State.HELD, event_type="held") is False
    assert store.messages.recipients("msg_" + "0" * 32)[0].state == "queued"
    assert store.queue.transition(rid, State.QUEUED, State.HELD, event_type="held") is True
    assert store.messages.recipients("msg_" + "0" * 32)[0].state == "held"
