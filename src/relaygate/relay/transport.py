"""The seam between the scheduler and the ways out (capture, MX, smarthost)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from relaygate.store.models import Claimed


@dataclass(frozen=True, kw_only=True)
class Batch:
    """One message to one destination domain: one SMTP transaction with several RCPTs."""

    message_id: str
    account_id: int
    domain: str
    mail_from: str
    data: bytes
    recipients: tuple[Claimed, ...]


@dataclass(frozen=True, kw_only=True)
class RecipientResult:
    recipient_id: int
    outcome: str  # delivered | deferred | bounced
    code: int | None
    status: str
    text: str
    remote: str = ""
    command: str = ""  # the SMTP command the reply answered (MAIL, RCPT, DATA); "" when none


class Transport(Protocol):
    async def deliver(self, batch: Batch) -> list[RecipientResult]: ...

    async def aclose(self) -> None:
        """Release what the transport keeps between batches (idle SMTP sessions)."""
