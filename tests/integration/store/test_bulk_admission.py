"""Admissions written together (``SqliteAdmission.admit_batch``, the group writer's bulk path) leave the
store exactly as one ``admit_one`` per message in its own SAVEPOINT would: the same answers (limits,
429s with their headers, 401), the same rows in every table (ids included), the same events in
the same order. Random batches over accounts with small limits, suppressions (one expired),
second and day boundaries."""

from __future__ import annotations

import asyncio
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relaygate.clock import FakeClock
from relaygate.errors import LimitExceeded, RequestError
from relaygate.store.models import NewMessage, NewRecipient
from relaygate.store.sqlite import SqliteStore as Store

DAY_END = 1_790_035_200.0  # a UTC midnight
#: table → order (the usage counters are keyed: their row order means nothing)
TABLES = {
    "messages": "rowid",
    "bodies": "rowid",
    "message_tags": "rowid",
    "recipients": "id",
    "events": "id",
    "usage_second": "account_id, second",
    "usage_daily": "account_id, day",
}
#: Two stores per example: on tmpfs when there is one (synchronous=FULL fsyncs are free there).
TMP = "/dev/shm" if Path("/dev/shm").is_dir() else None


def make_store(path: Path) -> Store:
    store = Store(path, clock=FakeClock(DAY_END - 2)).open()
    for name, rate, quota in (("a", 3, 4), ("b", 2, 3)):
        store.accounts.create(name, plan="paid", rate_limit=rate, daily_quota=quota)
    for address, expires in (
        ("s1@d.test", None),
        ("s2@d.test", DAY_END - 10),
        ("s3@d.test", DAY_END - 0.5),  # expires between two items of a batch
    ):
        store.suppressions.add(
            1, address, reason="userunknown", source="bounce", expires_at=expires
        )
    with (
        store.core.conn() as conn
    ):  # an old per-second counter, for the clean-up at DAY_END % 64 == 0
        conn.execute("INSERT INTO usage_second VALUES (1, ?, 5)", (int(DAY_END) - 1000,))
    return store


def answer(outcome: tuple[bool, Any]) -> Any:
    ok, value = outcome
    if ok:
        return ("ok", value)
    assert isinstance(value, RequestError), value
    return ("refused", value.status, value.detail, _limits_of(value))


def _limits_of(exc: RequestError) -> Any:
    if isinstance(exc, LimitExceeded):
        return (exc.limit, exc.remaining, exc.retry_after)
    return exc.headers


def one_by_one(store: Store, items: list[tuple[NewMessage, float, bool]]) -> list[Any]:
    conn = store.core.conn()
    conn.execute("BEGIN IMMEDIATE")
    out = []
    for i, item in enumerate(items):
        conn.execute(f"SAVEPOINT j{i}")
        try:
            out.append(("ok", store.admission.admit_one(conn, *item)))
        except RequestError as exc:
            conn.execute(f"ROLLBACK TO j{i}")
            out.append(("refused", exc.status, exc.detail, _limits_of(exc)))
        conn.execute(f"RELEASE j{i}")
    conn.execute("COMMIT")
    return out


def together(store: Store, items: list[tuple[NewMessage, float, bool]]) -> list[Any]:
    conn = store.core.conn()
    conn.execute("BEGIN IMMEDIATE")
    out = [answer(o) for o in store.admission.admit_batch(conn, items)]
    conn.execute("COMMIT")
    return out


def dump(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    conn = sqlite3.connect(store.path)
    try:
        return {
            t: conn.execute(f"SELECT * FROM {t} ORDER BY {order}").fetchall()
            for t, order in TABLES.items()
        }
    finally:
        conn.close()


addresses = st.sampled_from(
    ["r1@d.test", "R2@D.test", "s1@d.test", "S2@d.test", "s3@D.TEST", "x@e.test"]
)
message = st.tuples(
    st.sampled_from([1, 1, 2, 3]),  # 3: no such account
    st.lists(addresses, min_size=1, max_size=3, unique_by=str.lower),
    st.lists(st.sampled_from(["t1", "t2"]), max_size=2, unique=True),
    st.booleans(),  # check_suppressions
    st.booleans(),  # check_limits
    st.sampled_from([-1.5, -0.9, -0.2, 0.0, 0.3, 1.1]),  # seconds around midnight
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches=st.lists(st.lists(message, min_size=1, max_size=8), min_size=1, max_size=3))
def test_bulk_equals_one_by_one(batches: list[list[tuple[Any, ...]]]) -> None:
    with tempfile.TemporaryDirectory(dir=TMP) as tmp:
        bulk, single = make_store(Path(tmp) / "a.db"), make_store(Path(tmp) / "b.db")
        try:
            n = 0
            for batch in batches:
                items = []
                for account, rcpts, tags, check_supp, check_limits, offset in sorted(
                    batch, key=lambda b: b[5]
                ):
                    n += 1
                    recipients = tuple(
                        NewRecipient(
                            address=a,
                            kind="to",
                            suppressed=None if check_supp or "s1" not in a.lower() else "manual",
                        )
                        for a in rcpts
                    )
                    items.append(
                        (
                            NewMessage(
                                id=f"msg_{n:04d}",
                                account_id=account,
                                channel="smtp",
                                from_addr="f@example.com",
                                sender_domain="example.com",
                                subject=f"s{n}",
                                header_message_id=f"<{n}@h>",
                                tags=tuple(tags),
                                body=b"body %d" % n,
                                recipients=recipients,
                                check_suppressions=check_supp,
                            ),
                            DAY_END + offset,
                            check_limits,
                        )
                    )
                assert together(bulk, items) == one_by_one(single, items)
            assert dump(bulk) == dump(single)
        finally:
            bulk.close()
            single.close()


async def test_a_failing_bulk_falls_back_to_one_by_one(
    store: Store, sender: dict[str, Any]
) -> None:
    """Two admissions with the same message id in one batch: the multi-row insert fails, the
    writer rolls it back and runs each alone: the first is kept, the second gets the error."""
    account = sender["account"]

    def msg(subject: str) -> NewMessage:
        return NewMessage(
            id="msg_same",
            account_id=account.id,
            channel="http",
            from_addr="a@example.com",
            sender_domain="example.com",
            subject=subject,
            header_message_id="<x@h>",
            tags=(),
            body=b"b",
            recipients=(NewRecipient(address="r@dest.test", kind="to"),),
            check_suppressions=True,
        )

    results = await asyncio.gather(
        store.admission.admit(msg("first")),
        store.admission.admit(msg("second")),
        return_exceptions=True,
    )
    assert store.core.writer.bulk_fallbacks >= 1
    assert not isinstance(results[0], BaseException)
    assert isinstance(results[1], sqlite3.IntegrityError)
    found = store.messages.get("msg_same")
    assert found is not None and found["subject"] == "first"
    assert [r.state for r in store.messages.recipients("msg_same")] == ["queued"]
