"""The seam between the scheduler and the ways out (capture, MX, smarthost)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from relaygate.store.models import Claimed


@dataclass(frozen=True, kw_only=True)
class Batch:
    """One message to one destination domain.

    ``senders`` holds each recipient's envelope sender, in the order of ``recipients``: its own
    VERP return path, so that a DSN can only ever name the recipient whose copy failed.
    Recipients that share a sender share an SMTP transaction (``transactions``); with VERP that
    is one transaction per recipient, run one after the other on one connection.
    """

    message_id: str
    account_id: int
    domain: str
    senders: tuple[str, ...]
    data: bytes
    recipients: tuple[Claimed, ...]

    def __post_init__(self) -> None:
        if len(self.senders) != len(self.recipients):
            raise ValueError("a Batch needs one sender per recipient")

    def transactions(self) -> list[tuple[str, tuple[Claimed, ...]]]:
        """(MAIL FROM, its recipients) per SMTP transaction, in the recipients' order."""
        groups: dict[str, list[Claimed]] = {}
        for sender, recipient in zip(self.senders, self.recipients, strict=True):
            groups.setdefault(sender, []).append(recipient)
        return [(sender, tuple(rcpts)) for sender, rcpts in groups.items()]


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
