"""The webhook attempt log and endpoint changes through the interface: each attempt keeps the
first 512 bytes of the response and its next try, attempts page by id and are found by id,
and a live endpoint's URL and event types can be changed."""

from __future__ import annotations

from relaygate.clock import FakeClock
from relaygate.store import Store
from relaygate.store.models import AttemptResult

from .test_contract_outbox import delivered


async def test_attempts_keep_the_response_and_the_next_try(
    store: Store, another: Store, clock: FakeClock
) -> None:
    account = store.accounts.create("w", plan="paid").id
    hook = store.webhooks.create(account_id=account, url="https://a.test/", events=(), secret="s")
    await delivered(store, account, "a@d.test")
    await store.webhooks.fan_out()
    (d,) = await store.webhooks.claim("o", limit=5, per_endpoint=5, lease_seconds=60)
    retry_at = clock.now() + 30
    await store.webhooks.record(
        "o",
        AttemptResult(
            delivery_id=d.id,
            ok=False,
            status=503,
            outcome="http_error",
            error="HTTP 503",
            duration_ms=3,
            next_attempt_at=retry_at,
            response="é" * 400,  # 800 bytes: kept up to 512, whole characters
        ),
    )
    clock.advance(30)
    (again,) = await store.webhooks.claim("o", limit=5, per_endpoint=5, lease_seconds=60)
    await store.webhooks.record(
        "o",
        AttemptResult(
            delivery_id=again.id,
            ok=True,
            status=204,
            outcome="ok",
            error="",
            duration_ms=2,
            next_attempt_at=None,
        ),
    )
    newest, oldest = another.webhooks.recent_attempts(hook.id)
    assert (oldest.status, oldest.next_attempt_at, oldest.response) == (503, retry_at, "é" * 256)
    assert (newest.status, newest.next_attempt_at, newest.response) == (204, None, "")
    assert newest.id > oldest.id > 0
    assert another.webhooks.recent_attempts(hook.id, limit=1) == [newest]
    assert another.webhooks.recent_attempts(hook.id, before=newest.id) == [oldest]
    assert another.webhooks.attempt(oldest.id) == oldest
    assert another.webhooks.attempt(oldest.id + 1000) is None


def test_update_changes_a_live_endpoint_only(store: Store) -> None:
    account = store.accounts.create("u", plan="paid").id
    hook = store.webhooks.create(account_id=account, url="https://a.test/", events=(), secret="s")
    changed = store.webhooks.update(hook.id, url="https://b.test/in", events=("bounce", "delivery"))
    assert changed is not None and changed.url == "https://b.test/in"
    assert changed.events == ("delivery", "bounce")  # in the catalogue's order
    assert store.webhooks.update(hook.id, events=()) is not None
    assert store.webhooks.get(hook.id).events == ()  # type: ignore[union-attr]
    assert store.webhooks.update(hook.id) == store.webhooks.get(hook.id)
    store.webhooks.remove(hook.id)
    assert store.webhooks.update(hook.id, url="https://c.test/") is None
    assert store.webhooks.update("wh_nope", url="https://c.test/") is None
