"""The funnel: every way in (HTTP, SMTP) ends here, where policy is checked and the message and its
recipients are committed in one transaction. Nothing is acknowledged before that commit.

Trust: everything in a request is stranger-controlled. Each problem becomes a ``RequestError``
with the HTTP status of the contract and a ``detail`` naming the problem; nothing is written
unless every check passed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any

from relaygate.clock import Clock
from relaygate.compose.addresses import AddressError, Mailbox, domain_of, parse_mailbox
from relaygate.compose.mime import (
    Attachment,
    AttachmentError,
    HeaderError,
    build_message,
    decode_attachment,
    validate_headers,
)
from relaygate.compose.renderer import Renderer, default_renderer
from relaygate.compose.templates import Template, TemplateError, system_catalog
from relaygate.domains import sender_refusal
from relaygate.errors import RenderUnavailable, RequestError
from relaygate.events.tracking import track_html
from relaygate.gateway import rawmail
from relaygate.gateway.jsonbody import check_body
from relaygate.idn import ascii_address, ascii_domain
from relaygate.policy import Limits, check_can_send, check_scope
from relaygate.settings import Settings
from relaygate.store import Store
from relaygate.store.ids import new_message_id
from relaygate.store.models import Account, ApiKey, NewMessage, NewRecipient

log = logging.getLogger("relaygate.admission")

MAX_RECIPIENTS = 50
_FIELDS = frozenset(
    {
        "from_email",
        "to",
        "cc",
        "bcc",
        "reply_to",
        "subject",
        "html",
        "text",
        "template",
        "variables",
        "headers",
        "tags",
        "attachments",
        "track_opens",
        "track_clicks",
    }
)


@dataclass(frozen=True, kw_only=True)
class Accepted:
    id: str
    limits: Limits


def check_key(key: ApiKey, account: Account, scope: str) -> None:
    """Scope (403) and plan (402) checks for an authenticated key."""
    check_scope(key.scopes, scope)
    if scope == "email:send":
        check_can_send(account.plan)


def _string(body: Mapping[str, Any], name: str, *, required: bool = False) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise RequestError(400, f"{name} is required")
        return None
    if not isinstance(value, str):
        raise RequestError(400, f"{name} must be a string")
    return value


def _address_list(body: Mapping[str, Any], name: str) -> list[Mailbox]:
    value = body.get(name)
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise RequestError(400, f"{name} must be a list of email addresses")
    out = []
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise RequestError(400, f"{name}[{i}] must be a string")
        try:
            out.append(parse_mailbox(item))
        except AddressError as exc:
            raise RequestError(400, f"{name}[{i}]: {exc}") from None
    return out


#: Content larger than this (characters of html and text, bytes of attachments) is composed in a
#: thread rather than on the event loop.
HEAVY_COMPOSE_CHARS = 256 * 1024


def _size(html: str | None, text: str | None, attachments: Sequence[Attachment]) -> int:
    return len(html or "") + len(text or "") + sum(len(a.data) for a in attachments)


def _envelope_domain(address: str) -> str:
    """The domain of an address that may have a UTF-8 local part (SMTPUTF8), in the canonical
    form of ``relaygate.idn`` (the one normaliser)."""
    domain = address.rpartition("@")[2]
    try:
        return ascii_domain(domain)
    except ValueError:
        return domain.rstrip(".").lower()


def _envelope_address(address: str) -> str:
    """An envelope address with its domain canonical (outbound SMTP speaks A-labels)."""
    try:
        return ascii_address(address)
    except ValueError:
        return address


class Admission:
    def __init__(
        self,
        *,
        store: Store,
        settings: Settings,
        clock: Clock,
        renderer: Renderer | None = None,
    ) -> None:
        self.store = store
        self.renderer = renderer or default_renderer()
        self.settings = settings
        self.clock = clock
        self.on_commit: Callable[[], None] | None = None
        self.tracking_key = settings.secret_key() if settings.secret_key_file.exists() else None

    async def send(
        self,
        key: ApiKey,
        account: Account,
        body: Any,
        *,
        idempotency: tuple[str, str] | None = None,
    ) -> Accepted:
        """POST /v1/send after authentication: validate, compose, commit."""
        check_key(key, account, "email:send")
        if not isinstance(body, dict):
            raise RequestError(400, "request body must be a JSON object")
        check_body(body)
        unknown = sorted(set(body) - _FIELDS)
        if unknown:
            raise RequestError(400, f"unknown field(s): {', '.join(unknown)}")
        from_raw = _string(body, "from_email", required=True)
        assert from_raw is not None
        try:
            sender = parse_mailbox(from_raw)
        except AddressError as exc:
            raise RequestError(400, f"from_email: {exc}") from None
        to = _address_list(body, "to")
        cc = _address_list(body, "cc")
        bcc = _address_list(body, "bcc")
        if not to:
            raise RequestError(400, "to must list at least one recipient")
        if len(to) + len(cc) + len(bcc) > MAX_RECIPIENTS:
            raise RequestError(
                400,
                f"too many recipients: to+cc+bcc is {len(to) + len(cc) + len(bcc)}, at most {MAX_RECIPIENTS}",
            )
        reply_raw = _string(body, "reply_to")
        reply_to = None
        if reply_raw:
            try:
                reply_to = parse_mailbox(reply_raw)
            except AddressError as exc:
                raise RequestError(400, f"reply_to: {exc}") from None
        subject, html, text = await self._content(account, body)
        headers_raw = body.get("headers") or {}
        if not isinstance(headers_raw, dict):
            raise RequestError(400, "headers must be an object of string values")
        try:
            headers = validate_headers(headers_raw)
        except HeaderError as exc:
            raise RequestError(400, f"headers: {exc.detail}") from None
        tags = self._tags(body.get("tags"))
        attachments = self._attachments(body.get("attachments"))
        if not self.store.identities.sender_allowed(account.id, sender.ascii_addr_spec):
            reason = await asyncio.to_thread(
                sender_refusal, self.store, account.id, sender.ascii_addr_spec
            )
            raise RequestError(403, f"from_email {sender.addr_spec} is not allowed: {reason}")
        opens, clicks = self._tracking(account, body)
        msg_id = new_message_id()
        header_id = f"<{msg_id}@{self.settings.hostname}>"
        date = self.clock.now()

        def compose(html_part: str | None) -> bytes:
            try:
                return build_message(
                    message_id=header_id,
                    date=date,
                    from_=sender,
                    to=to,
                    cc=cc,
                    reply_to=reply_to,
                    subject=subject,
                    text=text or None,
                    html=html_part or None,
                    headers=headers,
                    attachments=attachments,
                    hostname=self.settings.hostname,
                )
            except (HeaderError, AttachmentError) as exc:
                raise RequestError(400, exc.detail) from None

        # Tracked bodies need to know who is suppressed before the commit (no body for them);
        # otherwise the admission transaction looks the list up (no read on this thread).
        tracked = bool(html and (opens or clicks) and self.tracking_key is not None)
        # Composing is CPU work that grows with the message (and, tracked, with every recipient:
        # 50 recipients of a 420 KB page of 5,000 links took 16 s): large or tracked messages
        # are composed in a thread, so the event loop goes on (the GIL is handed over every
        # few milliseconds). Small untracked ones are composed here (a thread hop costs ~35 µs).
        heavy = tracked or _size(html, text, attachments) > HEAVY_COMPOSE_CHARS
        raw = await asyncio.to_thread(compose, html) if heavy else compose(html)
        suppressed = (
            await asyncio.to_thread(
                self.store.suppressions.lookup,
                account.id,
                [b.ascii_addr_spec for b in (*to, *cc, *bcc)],
            )
            if tracked
            else {}
        )
        recipients = self._recipients(to, cc, bcc, suppressed)
        variants: tuple[bytes, ...] = ()
        if tracked and html and self.tracking_key is not None:  # (the same test, for mypy)
            # One body per recipient: the pixel and links carry a signed token for that recipient.
            tracking_key, tracked_html = self.tracking_key, html

            def tracked_bodies() -> tuple[bytes, ...]:
                return tuple(
                    b""
                    if r.suppressed
                    else compose(
                        track_html(
                            tracked_html,
                            public_url=self.settings.http.public_url,
                            key=tracking_key,
                            account_id=account.id,
                            message_id=msg_id,
                            recipient_id=i,
                            issued_at=date,
                            opens=opens,
                            clicks=clicks,
                        )
                    )
                    for i, r in enumerate(recipients)
                )

            variants = await asyncio.to_thread(tracked_bodies)
        limits = await self.store.admission.admit(
            NewMessage(
                id=msg_id,
                account_id=account.id,
                channel="http",
                from_addr=sender.addr_spec,
                sender_domain=domain_of(sender.addr_spec),
                subject=subject,
                header_message_id=header_id,
                tags=tuple(tags),
                body=raw,
                recipients=recipients,
                idempotency=idempotency,
                recipient_bodies=variants,
                check_suppressions=not tracked,
            )
        )
        if self.on_commit is not None:
            self.on_commit()
        log.info(
            "accepted",
            extra={
                "msg_id": msg_id,
                "channel": "http",
                "account": account.id,
                "recipients": len(recipients),
            },
        )
        return Accepted(id=msg_id, limits=limits)

    # -- SMTP submission ----------------------------------------------------------------------
    def check_smtp_sender(self, account: Account, key: ApiKey | None, mail_from: str) -> None:
        """The MAIL FROM checks: key scope (403), plan (402), envelope sender identity (403).

        ``key`` is None for a trusted network (no key to check; the plan still applies).
        """
        if key is not None:
            check_key(key, account, "email:send")
        else:
            check_can_send(account.plan)
        if not mail_from:
            raise RequestError(
                403, "the null sender <> is only accepted for bounce and feedback addresses"
            )
        if not self.store.identities.sender_allowed(account.id, _envelope_address(mail_from)):
            raise RequestError(
                403, f"MAIL FROM {mail_from} is not a verified identity of this account"
            )

    async def submit_smtp(
        self,
        *,
        account: Account,
        key: ApiKey | None,
        mail_from: str,
        rcpts: list[str],
        data: bytes,
        peer: str,
        helo: str = "",
        protocol: str = "ESMTP",
    ) -> Accepted:
        """A message handed in over SMTP (after DATA): check, add our headers, commit.

        The submitted bytes are kept as they are; Received (and Message-ID / Date when
        missing) are prepended as raw header lines and X-SM-Tags fields are removed from the
        header block (their values become the tags). Raises RequestError like ``send``.
        """
        self.check_smtp_sender(account, key, mail_from)
        if not rcpts:
            raise RequestError(400, "the message has no recipients")
        if len(rcpts) > self.settings.smtp.max_recipients:
            raise RequestError(
                400, f"too many recipients: at most {self.settings.smtp.max_recipients}"
            )
        block = rawmail.read_head(data)
        froms = rawmail.header_addresses(block.headers, "From")
        if len(block.headers.get_all("From", [])) != 1 or not froms:
            raise RequestError(400, "the message needs exactly one From header with an address")
        checked = _envelope_address(mail_from).lower()  # allowed a moment ago
        for addr in froms:
            canonical = _envelope_address(addr)
            if canonical.lower() != checked and not self.store.identities.sender_allowed(
                account.id, canonical
            ):
                raise RequestError(
                    403, f"header From {addr} is not a verified identity of this account"
                )
        tags = self._tags(list(block.tags)) if block.tags else []
        msg_id = new_message_id()
        now = self.clock.now()
        added = rawmail.received(
            helo=helo,
            peer_ip=peer,
            hostname=self.settings.hostname,
            protocol=protocol,
            msg_id=msg_id,
            now=now,
        )
        header_id = rawmail.header_text(block.headers, "Message-ID")
        if block.headers.get("Message-ID") is None:
            header_id = f"<{msg_id}@{self.settings.hostname}>"
            added += f"Message-ID: {header_id}\r\n".encode("ascii")
        if block.headers.get("Date") is None:
            added += f"Date: {formatdate(now, usegmt=True)}\r\n".encode("ascii")
        subject = rawmail.header_text(block.headers, "Subject")
        recipients = self._smtp_recipients(account.id, rcpts, block)
        limits = await self.store.admission.admit(
            NewMessage(
                id=msg_id,
                account_id=account.id,
                channel="smtp",
                from_addr=froms[0],
                sender_domain=_envelope_domain(froms[0]),
                subject=subject,
                header_message_id=header_id,
                tags=tuple(tags),
                body=added + block.head + block.rest,
                recipients=recipients,
                check_suppressions=True,
            )
        )
        if self.on_commit is not None:
            self.on_commit()
        log.info(
            "accepted",
            extra={
                "msg_id": msg_id,
                "channel": "smtp",
                "account": account.id,
                "recipients": len(recipients),
                "peer": peer,
            },
        )
        return Accepted(id=msg_id, limits=limits)

    def _smtp_recipients(
        self, account_id: int, rcpts: Sequence[str], block: rawmail.HeaderBlock
    ) -> tuple[NewRecipient, ...]:
        """Envelope recipients, de-duplicated; kind from the To/Cc headers (bcc otherwise)."""
        to = {a.lower() for a in rawmail.header_addresses(block.headers, "To")}
        cc = {a.lower() for a in rawmail.header_addresses(block.headers, "Cc")}
        first: dict[str, str] = {}
        for r in rcpts:
            canonical = _envelope_address(r)
            first.setdefault(canonical.lower(), canonical)
        return tuple(
            NewRecipient(address=addr, kind="to" if low in to else "cc" if low in cc else "bcc")
            for low, addr in first.items()
        )

    @staticmethod
    def _recipients(
        to: Sequence[Mailbox],
        cc: Sequence[Mailbox],
        bcc: Sequence[Mailbox],
        suppressed: Mapping[str, str],
    ) -> tuple[NewRecipient, ...]:
        seen: set[str] = set()
        out = []
        for kind, boxes in (("to", to), ("cc", cc), ("bcc", bcc)):
            for box in boxes:
                addr = box.ascii_addr_spec  # the envelope speaks A-labels
                if addr.lower() in seen:
                    continue
                seen.add(addr.lower())
                out.append(
                    NewRecipient(address=addr, kind=kind, suppressed=suppressed.get(addr.lower()))
                )
        return tuple(out)

    @staticmethod
    def _tags(value: Any) -> list[str]:
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
            raise RequestError(400, "tags must be a list of strings")
        for t in value:
            if not t or len(t) > 128 or any(c in t for c in "\r\n\x00"):
                raise RequestError(
                    400, f"tag {t[:40]!r} must be 1-128 characters without line breaks"
                )
        if len(value) > 20:
            raise RequestError(400, "at most 20 tags per message")
        return list(dict.fromkeys(value))

    @staticmethod
    def _attachments(value: Any) -> list[Attachment]:
        if value is None:
            return []
        if not isinstance(value, list):
            raise RequestError(400, "attachments must be a list")
        out = []
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                raise RequestError(400, f"attachments[{i}] must be an object")
            filename, content = item.get("filename"), item.get("content_base64")
            ctype = item.get("content_type")
            if not isinstance(filename, str) or not isinstance(content, str):
                raise RequestError(
                    400, f"attachments[{i}] needs filename and content_base64 strings"
                )
            if ctype is not None and not isinstance(ctype, str):
                raise RequestError(400, f"attachments[{i}].content_type must be a string")
            try:
                out.append(decode_attachment(filename, content, ctype))
            except AttachmentError as exc:
                raise RequestError(400, f"attachments[{i}]: {exc.detail}") from None
        return out

    @staticmethod
    def _tracking(account: Account, body: Mapping[str, Any]) -> tuple[bool, bool]:
        """Open/click tracking: the account's setting, unless the request overrides it."""
        out = []
        for name, default in (
            ("track_opens", account.track_opens),
            ("track_clicks", account.track_clicks),
        ):
            value = body.get(name)
            if value is not None and not isinstance(value, bool):
                raise RequestError(400, f"{name} must be true or false")
            out.append(default if value is None else value)
        return out[0], out[1]

    async def _content(
        self, account: Account, body: Mapping[str, Any]
    ) -> tuple[str, str | None, str | None]:
        """Subject, html and text: inline, or rendered from the account's or the system's template."""
        subject = _string(body, "subject")
        html = _string(body, "html")
        text = _string(body, "text")
        slug = _string(body, "template")
        variables = body.get("variables")
        if variables is not None and not isinstance(variables, dict):
            raise RequestError(400, "variables must be an object")
        if slug is None:
            if variables is not None:
                raise RequestError(400, "variables are only used with a template")
            if not subject:
                raise RequestError(400, "subject is required unless a template is used")
            if not html and not text:
                raise RequestError(400, "html or text is required unless a template is used")
            if "\r" in subject or "\n" in subject:
                raise RequestError(400, "subject must not contain line breaks")
            return subject, html or None, text or None
        template = self.store.templates.get(account.id, slug) or system_catalog().get(slug)
        if template is None:
            raise RequestError(
                404,
                f"template {slug!r} not found (neither the account's own nor a system template)",
            )
        if subject:
            template = Template(
                slug=template.slug, subject=subject, html=template.html, text=template.text
            )
        try:
            rendered = await self.renderer.render(template, variables or {}, tenant=account.id)
        except TemplateError as exc:
            raise RequestError(400, f"template {slug!r}: {exc.detail}") from None
        except RenderUnavailable:
            raise RequestError(
                503, "template rendering is busy; retry later", headers={"Retry-After": "2"}
            ) from None
        return rendered.subject, rendered.html or None, rendered.text or None
