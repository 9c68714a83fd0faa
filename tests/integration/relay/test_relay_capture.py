"""Capture mode on disk: one file per delivery, none overwriting another."""

from __future__ import annotations

from pathlib import Path

from relaygate.relay.capture import CaptureTransport
from relaygate.relay.transport import Batch
from relaygate.store.models import Claimed


def _rcpt(rid: int, address: str, ordinal: int, *, tracked: bool = False) -> Claimed:
    return Claimed(
        id=rid,
        message_id="msg_1",
        account_id=1,
        address=address,
        domain=address.split("@")[1],
        attempts=0,
        queued_at=0.0,
        sender_domain="example.com",
        ordinal=ordinal,
        tracked=tracked,
    )


def _batch(*rcpts: Claimed, data: bytes = b"Subject: s\r\n\r\nhi\r\n") -> Batch:
    return Batch(
        message_id="msg_1",
        account_id=1,
        domain=rcpts[0].domain,
        senders=tuple(f"b+{r.id}@bounces.test" for r in rcpts),
        data=data,
        recipients=rcpts,
    )


async def test_a_message_to_two_domains_leaves_two_files(tmp_path: Path) -> None:
    capture = CaptureTransport(tmp_path)
    first = await capture.deliver(_batch(_rcpt(1, "a@one.test", 0), _rcpt(3, "c@one.test", 2)))
    second = await capture.deliver(_batch(_rcpt(2, "b@two.test", 1)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["msg_1.1.eml", "msg_1.eml"]
    one = (tmp_path / "msg_1.eml").read_bytes()
    two = (tmp_path / "msg_1.1.eml").read_bytes()
    assert b"X-Relaygate-Envelope-To: a@one.test, c@one.test\r\n" in one
    assert b"X-Relaygate-Envelope-To: b@two.test\r\n" in two
    assert [r.text for r in first + second] == [
        "250 2.0.0 captured as msg_1.eml",
        "250 2.0.0 captured as msg_1.eml",
        "250 2.0.0 captured as msg_1.1.eml",
    ]
    # a second delivery of the same batch writes the same file again
    await capture.deliver(_batch(_rcpt(2, "b@two.test", 1)))
    assert (tmp_path / "msg_1.1.eml").read_bytes() == two and len(list(tmp_path.iterdir())) == 2


async def test_tracked_copies_are_one_file_per_recipient(tmp_path: Path) -> None:
    capture = CaptureTransport(tmp_path)
    for ordinal in (0, 1):
        await capture.deliver(
            _batch(_rcpt(ordinal + 1, f"r{ordinal}@one.test", ordinal, tracked=True))
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["msg_1.0.eml", "msg_1.1.eml"]
