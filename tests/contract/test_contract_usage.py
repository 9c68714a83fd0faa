"""Usage counters through the interface: a management call counts against the per-second rate
limit like a send, a refused one counts nothing, and the quota is untouched."""

from __future__ import annotations

import pytest

from relaygate.clock import FakeClock
from relaygate.errors import LimitExceeded, RequestError
from relaygate.store import Store


async def test_count_request_shares_the_rate_limit_and_not_the_quota(
    store: Store, clock: FakeClock
) -> None:
    account = store.accounts.create("a", plan="paid", daily_quota=100, rate_limit=2)
    first = await store.usage.count_request(account.id)
    assert (first.rate_limit, first.rate_remaining, first.quota_remaining) == (2, 1, 100)
    await store.usage.count_request(account.id)
    with pytest.raises(LimitExceeded) as info:
        await store.usage.count_request(account.id)
    assert info.value.status == 429 and info.value.retry_after == 1
    assert store.usage.current_limits(account).rate_remaining == 0
    clock.advance(1)
    again = await store.usage.count_request(account.id)
    assert again.rate_remaining == 1 and again.quota_remaining == 100


async def test_count_request_for_no_account_is_401(store: Store) -> None:
    with pytest.raises(RequestError) as info:
        await store.usage.count_request(424242)
    assert info.value.status == 401


async def test_another_process_sees_the_count(store: Store, another: Store) -> None:
    account = store.accounts.create("b", plan="paid", daily_quota=100, rate_limit=1)
    await store.usage.count_request(account.id)
    with pytest.raises(LimitExceeded):
        await another.usage.count_request(account.id)
