"""Delivery mode ``capture``: each message is written to a local directory as one ``.eml`` file.

For development and the quick start. The file is written atomically (temp file, fsync, rename),
so a reader never sees half a message; a second delivery of the same message overwrites it with
identical bytes. Envelope recipients are recorded in an ``X-Relaygate-Envelope-To`` header
prepended to the file (outside any DKIM-signed header set), after a ``Return-Path`` holding the
first recipient's envelope sender; when the recipients' senders differ (one VERP return path
each), ``X-Relaygate-Envelope-From`` lists them in the order of the recipients.

File names: one file per delivery (a batch: the recipients at one destination domain), named
after the message and its first recipient's position in it (``ordinal``, 0-based): the delivery
that holds the message's first recipient is ``<msg_id>.eml``, any other ``<msg_id>.<n>.eml``,
so a message to two domains leaves two files and neither overwrites the other. A tracked
message has one body per recipient, each written as ``<msg_id>.<n>.eml``.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from relaygate.relay.transport import Batch, RecipientResult


def file_name(batch: Batch) -> str:
    """The file a batch is captured in (see the module's docstring)."""
    first = min(r.ordinal for r in batch.recipients)
    tracked = batch.recipients[0].tracked
    return f"{batch.message_id}.{first}.eml" if tracked or first else f"{batch.message_id}.eml"


class CaptureTransport:
    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    async def deliver(self, batch: Batch) -> list[RecipientResult]:
        name = file_name(batch)
        await asyncio.to_thread(self._write, batch, name)
        return [
            RecipientResult(
                recipient_id=r.id,
                outcome="delivered",
                code=250,
                status="2.0.0",
                text=f"250 2.0.0 captured as {name}",
            )
            for r in batch.recipients
        ]

    async def aclose(self) -> None:
        return None

    def _write(self, batch: Batch, name: str) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        senders = ""
        if len(set(batch.senders)) > 1:
            senders = f"X-Relaygate-Envelope-From: {', '.join(batch.senders)}\r\n"
        envelope = (
            f"Return-Path: <{batch.senders[0]}>\r\n"
            f"X-Relaygate-Envelope-To: {', '.join(r.address for r in batch.recipients)}\r\n"
            f"{senders}"
        ).encode()
        final = self.directory / name
        tmp = self.directory / f".{batch.message_id}.{os.getpid()}.{id(batch)}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
        try:
            os.write(fd, envelope + batch.data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, final)
