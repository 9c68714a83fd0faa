"""The inbound report processor: reads mail the SMTP listener accepted for relaygate's bounce and
feedback addresses, parses it (DSN / ARF / other), ties it to the message and recipient it is
about, and applies it. Correlation: the signed VERP token first; failing that the returned
original's Message-ID; failing that the report is kept as unmatched for the operator.

Trust: everything here is stranger-controlled. The parser never raises; VERP tokens are verified
(a forged one is ignored); relaygate never answers a report with mail of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re

from relaygate.bounces import verp
from relaygate.bounces.changes import report_changes
from relaygate.bounces.parse import parse_message
from relaygate.errors import StoreUnavailable
from relaygate.settings import Settings
from relaygate.store import Store
from relaygate.store.models import InboundMessage

log = logging.getLogger("relaygate.bounces")
_MSG_ID = re.compile(r"msg_[0-9a-f]{32}")


class InboundProcessor:
    def __init__(
        self, store: Store, settings: Settings, *, secret: bytes | None, poll: float = 1.0
    ) -> None:
        self.store = store
        self.settings = settings
        self.secret = secret
        self.poll = poll
        self._wake = asyncio.Event()
        self._stopping = False
        self.processed = 0

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        while not self._stopping:
            try:
                handled = await self.run_once()
            except Exception:
                log.exception("inbound processing failed")
                handled = 0
            if handled == 0:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self.poll)

    async def run_once(self, limit: int = 100) -> int:
        batch = self.store.inbound.pending(limit=limit)
        for item in batch:
            try:
                await self.process(item)
            except StoreUnavailable:
                raise  # the store is down: leave the report for the next round
            except Exception:
                # A report we cannot apply must not be retried forever: keep it (processed, with
                # its bytes in the inbound table) for the operator and go on.
                log.exception("inbound report could not be applied", extra={"inbound_id": item.id})
                await asyncio.to_thread(self.store.inbound.mark_processed, item.id)
        return len(batch)

    async def process(self, item: InboundMessage) -> dict[str, object]:
        report = await asyncio.to_thread(parse_message, item.data)
        message_id, recipient_id = self._correlate(
            item, report.original_message_id, report.original_headers
        )
        result = await self.store.inbound.apply(
            inbound_id=item.id,
            kind=report.kind,
            message_id=message_id,
            changes=report_changes(report, recipient_id),
            unmatched={"recipients": [r.recipient for r in report.recipients][:20]},
        )
        self.processed += 1
        log.info(
            "inbound report",
            extra={
                "msg_id": message_id or "",
                "inbound_id": item.id,
                "kind": report.kind,
                "matched": result.get("matched"),
                "applied": result.get("applied", 0),
            },
        )
        return result

    def _correlate(
        self, item: InboundMessage, original_id: str, headers: object
    ) -> tuple[str | None, int]:
        if self.secret is not None:
            ref = verp.find_in_report(
                item.data,
                envelope_recipients=item.rcpts,
                secret=self.secret,
                domains=[self.settings.return_path_domain],
            )
            if ref is not None:
                return ref.message_id, ref.recipient_id
        candidates = [original_id]
        if isinstance(headers, dict) or hasattr(headers, "get"):
            candidates += [
                str(headers.get("message-id", "")),
                str(headers.get("x-sm-message-id", "")),
            ]  # type: ignore[attr-defined]
        for value in candidates:
            if not value:
                continue
            found = self.store.messages.by_header_id(value)
            if found is not None:
                return found, 0
            m = _MSG_ID.search(value)
            if m and self.store.messages.get(m.group(0)) is not None:
                return m.group(0), 0
        return None, 0
