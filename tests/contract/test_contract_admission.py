"""Admission through the interface: limits decided in the transaction, refusals count nothing,
idempotency, suppressions, and the policy cache seeing changes made elsewhere."""

from __future__ import annotations

import pytest

from relaygate.clock import FakeClock
from relaygate.errors import IdempotentReplay, LimitExceeded, RequestError
from relaygate.store import Store
from relaygate.store.ids import new_message_id
from relaygate.store.models import Account, NewMessage, NewRecipient, Template


def message(
    account: Account,
    *rcpts: str,
    idempotency: tuple[str, str] | None = None,
    check_suppressions: bool = True,
    mid: str | None = None,
) -> NewMessage:
    return NewMessage(
        id=mid or new_message_id(),
        account_id=account.id,
        channel="http",
        from_addr="app@example.com",
        sender_domain="example.com",
        subject="hello",
        header_message_id=f"<{new_message_id()}@example.com>",
        tags=("t",),
        body=b"Subject: hello\r\n\r\nhi\r\n",
        recipients=tuple(NewRecipient(address=r, kind="to") for r in rcpts),
        idempotency=idempotency,
        check_suppressions=check_suppressions,
    )


async def test_rate_limit_refuses_and_counts_nothing(store: Store, clock: FakeClock) -> None:
    account = store.accounts.create("a", plan="paid", daily_quota=100, rate_limit=2)
    first = await store.admission.admit(message(account, "r1@d.test"))
    assert (first.rate_limit, first.rate_remaining, first.quota_remaining) == (2, 1, 99)
    await store.admission.admit(message(account, "r2@d.test"))
    refused = message(account, "r3@d.test")
    with pytest.raises(LimitExceeded) as info:
        await store.admission.admit(refused)
    assert info.value.status == 429 and info.value.retry_after == 1 and info.value.remaining == 0
    assert store.messages.get(refused.id) is None
    clock.advance(1)
    later = await store.admission.admit(message(account, "r4@d.test"))
    assert later.quota_remaining == 97  # the refused request used no quota


async def test_quota_per_utc_day_and_retry_after_midnight(store: Store, clock: FakeClock) -> None:
    account = store.accounts.create("q", plan="paid", daily_quota=3, rate_limit=100)
    await store.admission.admit(message(account, "a@d.test", "b@d.test"))
    with pytest.raises(LimitExceeded) as info:
        await store.admission.admit(message(account, "c@d.test", "e@d.test"))
    assert "daily quota" in info.value.detail
    assert info.value.retry_after == int(86400 - clock.now() % 86400) + 1
    ok = await store.admission.admit(message(account, "c@d.test"))  # one still fits
    assert ok.quota_remaining == 0
    clock.advance(86400 - clock.now() % 86400)  # the next UTC day
    assert (await store.admission.admit(message(account, "f@d.test"))).quota_remaining == 2


async def test_limits_false_counts_nothing(store: Store) -> None:
    account = store.accounts.create("n", plan="paid", daily_quota=1, rate_limit=1)
    for _ in range(3):
        await store.admission.admit(message(account, "a@d.test", "b@d.test"), limits=False)
    assert (await store.admission.admit(message(account, "c@d.test"))).quota_remaining == 0


async def test_unknown_account_is_401(store: Store) -> None:
    ghost = Account(id=999, name="x", plan="paid", daily_quota=1, rate_limit=1)
    with pytest.raises(RequestError) as info:
        await store.admission.admit(message(ghost, "a@d.test"))
    assert info.value.status == 401


async def test_suppressed_recipients_are_kept_final_and_uncounted(store: Store) -> None:
    account = store.accounts.create("s", plan="paid", daily_quota=1, rate_limit=10)
    store.suppressions.add(account.id, "Gone@D.test", reason="userunknown", source="bounce")
    assert store.suppressions.lookup(account.id, ["gone@d.test", "x@d.test"]) == {
        "gone@d.test": "userunknown"
    }
    m = message(account, "GONE@d.test", "live@d.test")
    assert (await store.admission.admit(m)).quota_remaining == 0  # only the live one counts
    states = {r.address: r.state for r in store.messages.recipients(m.id)}
    assert states == {"GONE@d.test": "suppressed", "live@d.test": "queued"}
    assert store.suppressions.remove(account.id, "gone@d.test")
    assert not store.suppressions.remove(account.id, "gone@d.test")


async def test_idempotency_replays_and_conflicts(store: Store, clock: FakeClock) -> None:
    account = store.accounts.create("i", plan="paid")
    first = message(account, "a@d.test", idempotency=("key-1", "hash-1"))
    await store.admission.admit(first)
    with pytest.raises(IdempotentReplay) as replay:
        await store.admission.admit(message(account, "a@d.test", idempotency=("key-1", "hash-1")))
    assert replay.value.message_id == first.id
    with pytest.raises(RequestError) as conflict:
        await store.admission.admit(message(account, "a@d.test", idempotency=("key-1", "hash-2")))
    assert conflict.value.status == 409
    clock.advance(86400 + 1)  # the window has passed: a new message
    fresh = message(account, "a@d.test", idempotency=("key-1", "hash-2"))
    await store.admission.admit(fresh)
    assert store.messages.get(fresh.id) is not None


async def test_a_message_id_is_admitted_once(store: Store) -> None:
    account = store.accounts.create("d", plan="paid")
    m = message(account, "a@d.test")
    await store.admission.admit(m)
    with pytest.raises(Exception):  # noqa: B017 - a backend's own integrity error
        await store.admission.admit(m)
    assert len(store.messages.recipients(m.id)) == 1


async def test_policy_changes_elsewhere_count_at_once(store: Store, another: Store) -> None:
    account = store.accounts.create("p", plan="paid")
    store.identities.add(account.id, "example.com", verified=True)
    key, secret = store.keys.create(account.id, scopes=["email:send"])
    store.templates.save(account.id, Template(slug="w", subject="s", html="<p>1</p>", text=""))
    # the reader remembers all four ...
    assert store.keys.authenticate(secret) is not None
    assert store.identities.sender_allowed(account.id, "app@example.com")
    assert store.accounts.get(account.id).plan == "paid"  # type: ignore[union-attr]
    assert store.templates.get(account.id, "w").html == "<p>1</p>"  # type: ignore[union-attr]
    # ... another process changes them ...
    assert another.keys.revoke(key.id)
    another.identities.set_status(another.identities.all(account.id)[0].id, "pending")
    another.accounts.update(account.id, plan="free")
    another.templates.save(account.id, Template(slug="w", subject="s", html="<p>2</p>", text=""))
    # ... and the next request sees every change
    assert store.keys.authenticate(secret) is None
    assert not store.identities.sender_allowed(account.id, "app@example.com")
    assert store.accounts.get(account.id).plan == "free"  # type: ignore[union-attr]
    assert store.templates.get(account.id, "w").html == "<p>2</p>"  # type: ignore[union-attr]


def test_plans_scopes_and_fields_are_checked(store: Store) -> None:
    for bad in (
        lambda: store.accounts.create("x", plan="gold"),
        lambda: store.accounts.create(" ", plan="paid"),
        lambda: store.accounts.create("x", rate_limit=0),
        lambda: store.accounts.update(1, colour="red"),
    ):
        with pytest.raises(RequestError) as info:
            bad()
        assert info.value.status == 400
    account = store.accounts.create("k", plan="trial")
    with pytest.raises(RequestError):
        store.keys.create(account.id, scopes=["email:everything"])
    with pytest.raises(RequestError):
        store.keys.create(account.id, scopes=[])
    with pytest.raises(RequestError) as missing:
        store.keys.create(999, scopes=["email:send"])
    assert missing.value.status == 404
    key, secret = store.keys.create(account.id, scopes=["email:read", "email:send"], name="n")
    assert key.scopes == ("email:read", "email:send") and secret.startswith("sk_live_")
    assert secret not in key.hint and [k.id for k in store.keys.all(account.id)] == [key.id]


def test_account_names_are_unique(store: Store) -> None:
    first = store.accounts.create("acme")
    with pytest.raises(RequestError) as refused:
        store.accounts.create("acme")
    assert refused.value.status == 409 and f"id {first.id}" in refused.value.detail
    other = store.accounts.create("other")
    with pytest.raises(RequestError) as renamed:
        store.accounts.update(other.id, name="acme")
    assert renamed.value.status == 409
    assert store.accounts.update(first.id, name="acme").name == "acme"  # its own name is free
    assert [a.name for a in store.accounts.all()] == ["acme", "other"]
