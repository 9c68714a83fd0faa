"""Delivery mode ``capture``: each message is written to a local directory as one ``.eml`` file.

For development and the quick start. The file is written atomically (temp file, fsync, rename),
so a reader never sees half a message; a second delivery of the same message overwrites it with
identical bytes. Envelope recipients are recorded in an ``X-Relaygate-Envelope-To`` header
prepended to the file (outside any DKIM-signed header set), after a ``Return-Path`` holding the
first recipient's envelope sender; when the recipients' senders differ (one VERP return path
each), ``X-Relaygate-Envelope-From`` lists them in the order of the recipients. A tracked
message has one body per recipient, written as ``<msg_id>.<ordinal>.eml``.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from relaygate.relay.transport import Batch, RecipientResult


class CaptureTransport:
    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    async def deliver(self, batch: Batch) -> list[RecipientResult]:
        await asyncio.to_thread(self._write, batch)
        return [
            RecipientResult(
                recipient_id=r.id,
                outcome="delivered",
                code=250,
                status="2.0.0",
                text=f"250 2.0.0 captured as {batch.message_id}.eml",
            )
            for r in batch.recipients
        ]

    async def aclose(self) -> None:
        return None

    def _write(self, batch: Batch) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        senders = ""
        if len(set(batch.senders)) > 1:
            senders = f"X-Relaygate-Envelope-From: {', '.join(batch.senders)}\r\n"
        envelope = (
            f"Return-Path: <{batch.senders[0]}>\r\n"
            f"X-Relaygate-Envelope-To: {', '.join(r.address for r in batch.recipients)}\r\n"
            f"{senders}"
        ).encode()
        first = batch.recipients[0]
        name = f"{batch.message_id}.{first.ordinal}" if first.tracked else batch.message_id
        final = self.directory / f"{name}.eml"
        tmp = self.directory / f".{batch.message_id}.{os.getpid()}.{id(batch)}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
        try:
            os.write(fd, envelope + batch.data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, final)
