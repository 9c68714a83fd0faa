"""The inbound report processor: reads mail the SMTP listener accepted for relaygate's bounce and
feedback addresses, parses it (DSN / ARF / other), finds the one recipient it may change, and
applies it; and drops the bytes of reports processed longer ago than the retention.

Which recipient a report may change (``bind``): only one bound by a verified VERP token, which
each recipient's own SMTP transaction carries as its envelope sender. For a DSN the token is its
envelope recipient (RCPT TO): a DSN goes back to the return path of the copy that failed. For an
ARF report it is the returned original's Return-Path or the report's Original-Mail-From (the same
address, as the receiving system recorded it), or the envelope recipient when the report was sent
to the return path. Nothing else counts: a Message-ID is visible to every recipient, and the
addresses a report names are whatever its sender wrote. A report with no token, a forged one,
tokens of several recipients, or a message-level token from before per-recipient VERP is kept
unmatched and changes nothing.

Trust: everything here is stranger-controlled. The parser never raises; tokens are verified; a
report never chooses its recipient; relaygate never answers a report with mail of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from relaygate.bounces import verp
from relaygate.bounces.changes import report_changes
from relaygate.bounces.parse import Report, parse_message
from relaygate.clock import Clock
from relaygate.errors import StoreUnavailable
from relaygate.settings import Settings
from relaygate.store import Store
from relaygate.store.models import InboundMessage, ReportChange

log = logging.getLogger("relaygate.bounces")

#: How often the processor drops the bytes of old reports (seconds of the injected clock).
PURGE_EVERY = 3600.0


@dataclass(frozen=True, kw_only=True)
class Binding:
    """What a report may change: the message and recipient of its one verified token (recipient
    id 0: a message-level token, which binds nobody), and why nothing when ``reason`` is set."""

    message_id: str | None = None
    recipient_id: int = 0
    reason: str = ""


def bind(
    report: Report,
    *,
    envelope_recipients: Sequence[str],
    secret: bytes | None,
    domains: Collection[str],
) -> Binding:
    """The one recipient a report may change, from its verified VERP token (module docstring).

    Reasons for binding nobody: ``no_token`` (none found), ``bad_token`` (a VERP-shaped address
    of ours that does not verify), ``ambiguous`` (tokens of different recipients),
    ``message_token`` (the message-level token of mail sent before per-recipient VERP).
    """
    if not secret:
        return Binding(reason="no_token")
    candidates = list(envelope_recipients)
    if report.kind == "complaint":
        candidates += [report.original_headers.get("return-path", ""), report.original_mail_from]
    refs, bad = verp.verified(candidates, secret=secret, domains=domains)
    if not refs:
        return Binding(reason="bad_token" if bad else "no_token")
    if len(refs) > 1:
        return Binding(reason="ambiguous")
    ref = refs[0]
    if ref.recipient_id == 0:
        return Binding(message_id=ref.message_id, reason="message_token")
    return Binding(message_id=ref.message_id, recipient_id=ref.recipient_id)


class InboundProcessor:
    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        secret: bytes | None,
        poll: float = 1.0,
        clock: Clock | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.secret = secret
        self.poll = poll
        self.clock = clock or store.clock
        self._wake = asyncio.Event()
        self._stopping = False
        self._purged_at: float | None = None
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
                await self.purge_due()
            except Exception:
                log.exception("inbound processing failed")
                handled = 0
            if handled == 0:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self.poll)

    async def run_once(self, limit: int = 100) -> int:
        batch = await asyncio.to_thread(self.store.inbound.pending, limit=limit)
        for item in batch:
            try:
                await self.process(item)
            except StoreUnavailable:
                raise  # the store is down: leave the report for the next round
            except Exception:
                # A report we cannot apply must not be retried forever: keep it (status failed,
                # with its bytes) for the operator and go on.
                log.exception("inbound report could not be applied", extra={"inbound_id": item.id})
                await asyncio.to_thread(self.store.inbound.mark_failed, item.id)
        return len(batch)

    async def purge_due(self) -> int:
        """Drop the bytes of reports processed more than ``report_retention`` ago; runs at most
        once per ``PURGE_EVERY`` (the first call purges at once)."""
        now = self.clock.now()
        if self._purged_at is not None and now - self._purged_at < PURGE_EVERY:
            return 0
        self._purged_at = now
        cutoff = now - self.settings.bounces.report_retention
        total = 0
        while (count := await self.store.inbound.purge(older_than=cutoff)) > 0:
            total += count
        if total:
            log.info("inbound report bytes dropped", extra={"count": total})
        return total

    async def process(self, item: InboundMessage) -> dict[str, object]:
        report = await asyncio.to_thread(parse_message, item.data)
        binding = bind(
            report,
            envelope_recipients=item.rcpts,
            secret=self.secret,
            domains=[self.settings.return_path_domain],
        )
        changes: list[ReportChange] = []
        if binding.message_id and binding.recipient_id:
            address = await asyncio.to_thread(self._address, binding)
            if address is not None:
                changes = report_changes(report, address)
        result = await self.store.inbound.apply(
            inbound_id=item.id,
            kind=report.kind,
            message_id=binding.message_id,
            recipient_id=binding.recipient_id,
            changes=changes,
            reason=binding.reason,
        )
        self.processed += 1
        log.info(
            "inbound report",
            extra={
                "msg_id": result.get("message_id") or "",
                "inbound_id": item.id,
                "kind": report.kind,
                "status": result.get("status"),
                "reason": result.get("reason") or "",
            },
        )
        return result

    def _address(self, binding: Binding) -> str | None:
        """The bound recipient's address (None when the message no longer has it)."""
        assert binding.message_id is not None
        for r in self.store.messages.recipients(binding.message_id):
            if r.id == binding.recipient_id:
                return r.address
        return None
