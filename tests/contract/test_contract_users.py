"""Dashboard users and sessions through the interface: unique lower-cased e-mail addresses, the
operator / account rule, password and TOTP changes, disabling ends every session at once (also
as another process sees it), sessions by their hashed id, promotion, the account switch, ending
and purging."""

from __future__ import annotations

import pytest

from relaygate.clock import FakeClock
from relaygate.errors import RequestError
from relaygate.store import Store


@pytest.fixture
def account(store: Store) -> int:
    return store.accounts.create("users", plan="paid").id


def test_create_get_and_list(store: Store, account: int) -> None:
    op = store.users.create("Root@Example.COM", account_id=None, operator=True, password_hash="h1")
    user = store.users.create(
        "ann@example.com", account_id=account, operator=False, password_hash="h2"
    )
    assert op.email == "root@example.com" and op.operator and op.account_id is None
    assert user.account_id == account and not user.operator and user.password_hash == "h2"
    assert store.users.by_email(" ROOT@example.com ") == op
    assert store.users.get(user.id) == user
    assert [u.id for u in store.users.all()] == [op.id, user.id]
    assert [u.id for u in store.users.all(account)] == [user.id]
    assert "h2" not in repr(user)


@pytest.mark.parametrize(
    ("email", "account_id", "operator", "status"),
    [
        ("dup@example.com", None, True, 409),
        ("x@example.com", None, False, 400),
        ("y@example.com", 1, True, 400),
        ("not-an-address", None, True, 400),
        ("z@example.com", 9999, False, 404),
    ],
)
def test_create_refusals_change_nothing(
    store: Store, account: int, email: str, account_id: int | None, operator: bool, status: int
) -> None:
    store.users.create("dup@example.com", account_id=None, operator=True, password_hash="h")
    with pytest.raises(RequestError) as caught:
        store.users.create(email, account_id=account_id, operator=operator, password_hash="h")
    assert caught.value.status == status
    assert [u.email for u in store.users.all()] == ["dup@example.com"]


def test_password_totp_and_sign_in_time(store: Store, account: int, clock: FakeClock) -> None:
    user = store.users.create(
        "a@example.com", account_id=account, operator=False, password_hash="old"
    )
    clock.advance(60)
    assert store.users.set_password(user.id, "new")
    assert store.users.set_totp(user.id, "JBSWY3DPEHPK3PXP")
    store.users.signed_in(user.id)
    again = store.users.get(user.id)
    assert again is not None
    assert again.password_hash == "new" and again.totp_secret == "JBSWY3DPEHPK3PXP"
    assert again.password_changed_at == clock.now() and again.last_sign_in_at == clock.now()
    assert not store.users.set_password(9999, "x")


def test_disable_ends_every_session_for_every_process(
    store: Store, another: Store, account: int
) -> None:
    user = store.users.create(
        "a@example.com", account_id=account, operator=False, password_hash="h"
    )
    other = store.users.create(
        "b@example.com", account_id=account, operator=False, password_hash="h"
    )
    store.sessions.open(user.id, session_id="s1", csrf="c1")
    store.sessions.open(user.id, session_id="s2", csrf="c2")
    store.sessions.open(other.id, session_id="s3", csrf="c3")
    assert store.users.disable(user.id)
    assert not store.users.disable(user.id)  # once
    assert another.sessions.get("s1") is None and another.sessions.get("s2") is None
    assert another.sessions.get("s3") is not None
    disabled = another.users.get(user.id)
    assert disabled is not None and disabled.disabled_at is not None
    with pytest.raises(RequestError) as caught:
        store.sessions.open(user.id, session_id="s4", csrf="c4")
    assert caught.value.status == 404
    assert store.users.enable(user.id)
    assert store.sessions.open(user.id, session_id="s4", csrf="c4").user_id == user.id


def test_sessions_touch_promote_switch_end(store: Store, account: int, clock: FakeClock) -> None:
    op = store.users.create("op@example.com", account_id=None, operator=True, password_hash="h")
    opened = store.sessions.open(op.id, session_id="pending", csrf="c0", stage="second_factor")
    assert opened.stage == "second_factor" and opened.created_at == opened.seen_at == clock.now()
    clock.advance(30)
    promoted = store.sessions.promote("pending", new_id="live", csrf="c1")
    assert promoted is not None and promoted.stage == "signed_in" and promoted.csrf == "c1"
    assert store.sessions.get("pending") is None
    assert store.sessions.promote("live", new_id="again", csrf="c2") is None  # only once
    clock.advance(30)
    assert store.sessions.touch("live")
    assert store.sessions.switch("live", account)
    seen = store.sessions.get("live")
    assert seen is not None and seen.seen_at == clock.now() and seen.account_id == account
    with pytest.raises(RequestError):
        store.sessions.switch("live", 9999)
    assert store.sessions.end("live") and not store.sessions.end("live")
    assert not store.sessions.touch("live")


def test_end_all_of_keeps_one_and_purge(store: Store, account: int, clock: FakeClock) -> None:
    user = store.users.create(
        "a@example.com", account_id=account, operator=False, password_hash="h"
    )
    store.sessions.open(user.id, session_id="old", csrf="c")
    clock.advance(100)
    store.sessions.open(user.id, session_id="mid", csrf="c")
    store.sessions.open(user.id, session_id="keep", csrf="c")
    assert store.sessions.end_all_of(user.id, but="keep") == 2
    assert store.sessions.get("keep") is not None
    store.sessions.open(user.id, session_id="stale", csrf="c")
    clock.advance(100)
    store.sessions.touch("keep")
    assert store.sessions.purge(seen_before=clock.now() - 50, created_before=0) == 1
    assert store.sessions.get("stale") is None and store.sessions.get("keep") is not None
    assert store.sessions.purge(seen_before=0, created_before=clock.now()) == 1
