"""The SMTP way in: aiosmtpd handler and server factory for submission (587/465/2525-style ports).

Owns the SMTP dialogue: who the client is (AUTH with an API key as password, or a trusted
network), which recipients a session may name (never an open relay), the early checks a client
expects at MAIL and RCPT time, and the one catalogue of reply lines. The message itself goes to
``Admission.submit_smtp`` (the same funnel as HTTP); a 250 after DATA means it is committed.
Mail for relaygate's own bounce/feedback addresses goes to an ``InboundSink`` instead.

Trust: everything on the wire is stranger-controlled. Replies come only from this module's
catalogue (``RequestError.detail`` is our own text, reduced to safe ASCII); an unexpected fault
answers ``451 4.3.0`` without internals. AUTH secrets are hashed by the store and never logged
(nor is any command text: ``wirelog``); failed AUTH attempts are throttled per client address
(``authlimit``), never a correct key. Content stays bytes end to end.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import ipaddress
import logging
import re
import socket
import ssl
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from email._header_value_parser import get_addr_spec, get_angle_addr
from email.errors import HeaderParseError
from typing import Any, ClassVar, Protocol

import aiosmtpd
import aiosmtpd.smtp
from aiosmtpd.smtp import (
    CALL_LIMIT_DEFAULT,
    MISSING,
    SMTP,
    AuthResult,
    Envelope,
    LoginPassword,
    Session,
    _AuthMechAttr,
    syntax,
)

from relaygate.clock import Clock
from relaygate.compose.addresses import AddressError, parse_mailbox
from relaygate.errors import RequestError, StoreUnavailable
from relaygate.gateway import wirelog
from relaygate.gateway.admission import Admission
from relaygate.gateway.authlimit import AuthLimits, FailedAuthThrottle
from relaygate.gateway.connlimit import ConnectionSlots, Listener
from relaygate.gateway.reportlimits import REPORT_TOO_BIG, ReportLimits, declared_size
from relaygate.gateway.smtpdata import DataState, read_message
from relaygate.idn import ascii_domain
from relaygate.settings import Settings
from relaygate.store import Store
from relaygate.store.models import Account, ApiKey

log = logging.getLogger("relaygate.smtp")
aiosmtpd_log = logging.getLogger("mail.log")

# -- the reply catalogue ------------------------------------------------------------------------
OK = "250 2.0.0 OK"
SENDER_OK = "250 2.1.0 Sender OK"
RECIPIENT_OK = "250 2.1.5 Recipient OK"
QUEUED = "250 2.0.0 OK queued as {id}"
INBOUND_OK = "250 2.0.0 OK received as {id}"
BYE = "221 2.0.0 Bye"
VRFY = "252 2.5.0 Cannot VRFY user; send mail and delivery will be attempted"
AUTH_TLS = "538 5.7.11 Encryption required for requested authentication mechanism"
AUTH_THROTTLED = "454 4.7.0 Too many failed authentication attempts; try again later"
AUTH_SCOPE = "535 5.7.8 This API key lacks the email:send scope"
TOO_MANY_RECIPIENTS = "452 4.5.3 Too many recipients (at most {n} per message)"
SEPARATE_TRANSACTION = "452 4.5.3 Send mail for this recipient in a separate transaction"
RELAY_DENIED = "554 5.7.1 Relay access denied; authenticate to send mail"
BAD_RECIPIENT = "553 5.1.3 Invalid recipient address"
NEEDS_SMTPUTF8 = "553 5.6.7 Non-ASCII addresses need the SMTPUTF8 parameter on MAIL FROM"
NULL_SENDER = "550 5.7.1 The null sender <> is only accepted for bounce and feedback addresses"
STORE_UNAVAILABLE = "451 4.3.0 The spool cannot accept mail right now; try again later"
INTERNAL = "451 4.3.0 Internal error; try again later"
SHUTTING_DOWN = "421 4.3.2 Service shutting down; try again later"
TOO_MANY = "421 4.7.0 Too many connections; try again later"
TOO_MANY_FROM_CLIENT = "421 4.7.0 Too many connections from your address; try again later"
TLS_ACTIVE = "503 5.5.1 TLS already active"

#: RequestError.status (the HTTP contract) → SMTP code and enhanced status code.
STATUS_REPLIES: Mapping[int, tuple[int, str]] = {
    400: (550, "5.6.0"),  # the message itself is unacceptable (no From, bad tags)
    401: (535, "5.7.8"),
    402: (550, "5.7.1"),  # free plan
    403: (550, "5.7.1"),  # unverified identity, missing scope
    413: (552, "5.3.4"),
    429: (451, "4.7.1"),  # rate limit or daily quota: temporary
}

#: aiosmtpd's own reply texts → ours (everything else of aiosmtpd's ≥ 400 gets a generic
#: enhanced code by reply code; 2xx/3xx lines — EHLO keywords, 334, 354 — are never touched).
_BUILTIN_REPLIES: Mapping[str, str] = {
    "552 Error: message size exceeds fixed maximum message size": "552 5.3.4 Message size exceeds fixed maximum message size",
    "552 Error: Too much mail data": "552 5.3.4 Message size exceeds fixed maximum message size",
    "500 Line too long (see RFC5321 4.5.3.1.6)": "500 5.5.2 Line too long (RFC 5321 4.5.3.1.6)",
}
_GENERIC_ENHANCED: Mapping[int, str] = {
    421: "4.3.0",
    451: "4.3.0",
    454: "4.7.0",
    500: "5.5.2",
    501: "5.5.4",
    502: "5.5.1",
    503: "5.5.1",
    504: "5.5.4",
    530: "5.7.0",
    552: "5.3.4",
    553: "5.1.3",
    554: "5.7.0",
    555: "5.5.4",
}
_HAS_ENHANCED = re.compile(r"^\d{3}[ -][245]\.\d{1,3}\.\d{1,3}( |$)")
_UNSAFE = re.compile(r"[^\x20-\x7e]")


def reply_for(exc: RequestError) -> str:
    """The one mapping from the funnel's RequestError to an SMTP reply line."""
    code, enhanced = STATUS_REPLIES.get(exc.status, (451, "4.3.0"))
    return f"{code} {enhanced} {_UNSAFE.sub('?', exc.detail)[:400]}"


def translate(reply: str) -> str:
    """Give aiosmtpd's built-in failure replies enhanced status codes (RFC 2034)."""
    mapped = _BUILTIN_REPLIES.get(reply)
    if mapped is not None:
        return mapped
    if len(reply) < 4 or not reply[:3].isdigit() or reply[0] not in "45" or reply[3] == "-":
        return reply
    if _HAS_ENHANCED.match(reply):
        return reply
    code = int(reply[:3])
    enhanced = _GENERIC_ENHANCED.get(code, f"{reply[0]}.0.0")
    text = reply[4:].removeprefix("Error: ")
    return f"{code} {enhanced} {text}"


# -- seams and values ---------------------------------------------------------------------------
class InboundSink(Protocol):
    """Where mail for relaygate's own bounce/feedback addresses goes (section 7 processing)."""

    async def accept(self, *, mail_from: str, rcpts: list[str], data: bytes, peer: str) -> str:
        """Keep the message durably; return a reference id for the 250 reply."""
        ...


class StoreInbound:
    """The default sink: the ``inbound`` table, for the bounce processor to consume."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def accept(self, *, mail_from: str, rcpts: list[str], data: bytes, peer: str) -> str:
        return await self.store.inbound.save(mail_from=mail_from, rcpts=rcpts, data=data, peer=peer)


@dataclass(frozen=True, kw_only=True)
class Principal:
    """Who submits: an API key (AUTH) or a trusted network (``key`` None)."""

    account_id: int
    key: ApiKey | None


class SubmissionSession(Session):
    """aiosmtpd's session plus what AUTH established (reset by STARTTLS, as RFC 3207 wants)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop)
        self.principal: Principal | None = None

    @property
    def login_data(self) -> Any:  # aiosmtpd's deprecated property logs a warning per AUTH
        return self._login_data

    @login_data.setter
    def login_data(self, value: Any) -> None:
        self._login_data = value


class SubmissionEnvelope(Envelope):
    def __init__(self) -> None:
        super().__init__()
        self.principal: Principal | None = None
        self.account: Account | None = None
        self.inbound: bool | None = None  # decided by the first accepted RCPT


_UTF8_LOCAL = re.compile(r"^[^\s\x00-\x1f\x7f\"(),:;<>@\[\\\]]{1,64}$")


def valid_recipient(address: str) -> bool:
    """A plain deliverable mailbox (as HTTP accepts), or its SMTPUTF8 form with a UTF-8 local part."""
    try:
        parse_mailbox(address)
        return True
    except AddressError:
        if address.isascii():
            return False
    local, at, domain = address.rpartition("@")
    try:
        local.encode("utf-8")
        a_labels = ascii_domain(domain)
    except (UnicodeError, ValueError):
        return False
    if not at or not _UTF8_LOCAL.match(local):
        return False
    try:
        parse_mailbox(f"x@{a_labels}")
    except AddressError:
        return False
    return True


def peer_ip(session: Session) -> str:
    return peer_ip_of(session.peer)


def peer_ip_of(peer: Any) -> str:
    if isinstance(peer, tuple) and peer:
        return str(peer[0])
    return str(peer or "")


def tls_active(server: SMTP) -> bool:
    transport = server.transport
    return transport is not None and transport.get_extra_info("ssl_object") is not None


def is_loopback(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip.partition("%")[0]).is_loopback
    except ValueError:
        return False


# -- the handler --------------------------------------------------------------------------------
class SubmissionHandler:
    """Every aiosmtpd hook, so nothing falls back to aiosmtpd's defaults (which accept and drop)."""

    _dir_cache: list[str] | None = None

    def __dir__(self) -> list[str]:
        """Only the hooks (handle_*, auth_*), which aiosmtpd finds by listing the handler."""
        cls = type(self)
        if cls._dir_cache is None:
            cls._dir_cache = [n for n in dir(cls) if n.startswith(("handle_", "auth_"))]
        return list(cls._dir_cache)

    def __init__(
        self,
        *,
        admission: Admission,
        settings: Settings,
        clock: Clock,
        inbound: InboundSink | None = None,
    ) -> None:
        self.admission = admission
        self.store = admission.store
        self.settings = settings
        self.clock = clock
        self.inbound: InboundSink = inbound or StoreInbound(admission.store)
        self.throttle = FailedAuthThrottle(
            clock,
            AuthLimits(
                failures=settings.smtp.auth_failure_limit, window=settings.smtp.auth_failure_window
            ),
        )
        self.max_recipients = settings.smtp.max_recipients
        self.bounce_domain = settings.return_path_domain.lower().rstrip(".")
        self.feedback = (settings.bounces.feedback_address or f"fbl@{self.bounce_domain}").lower()
        self.trusted = [
            (ipaddress.ip_network(cidr, strict=False), account)
            for cidr, account in settings.smtp.trusted_networks.items()
        ]
        self._trusted_seen: dict[str, int | None] = {}
        self.reports = ReportLimits(
            clock,
            max_bytes=settings.bounces.max_report_bytes,
            per_minute=settings.bounces.reports_per_minute,
            exempt=lambda ip: self.trusted_account(ip) is not None,
        )

    # -- who is this ---------------------------------------------------------------------------
    def may_authenticate(self, server: SMTP, session: Session) -> bool:
        return (
            not self.settings.smtp.auth_require_tls
            or tls_active(server)
            or is_loopback(peer_ip(session))
        )

    def trusted_account(self, ip: str) -> int | None:
        """The account of the trusted network ``ip`` is in (remembered per address string)."""
        if not self.trusted:
            return None
        try:
            return self._trusted_seen[ip]
        except KeyError:
            pass
        if len(self._trusted_seen) >= 4096:
            self._trusted_seen.clear()
        account = self._trusted_seen[ip] = self._trusted_lookup(ip)
        return account

    def _trusted_lookup(self, ip: str) -> int | None:
        try:
            addr = ipaddress.ip_address(ip.partition("%")[0])
        except ValueError:
            return None
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        for network, account in self.trusted:
            if addr.version == network.version and addr in network:
                return account
        return None

    def principal(self, session: SubmissionSession) -> Principal | None:
        if session.principal is not None:
            return session.principal
        account = self.trusted_account(peer_ip(session))
        return Principal(account_id=account, key=None) if account is not None else None

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        """aiosmtpd's ``authenticator``: the password is an API key; the user name is ignored."""
        if mechanism not in ("PLAIN", "LOGIN") or not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        ip = peer_ip(session)
        secret = auth_data.password.decode("utf-8", "replace").strip()
        found = self.store.keys.authenticate(secret)
        if found is None:
            throttled = self.throttle.failed(ip) > 0
            log.info(
                "auth failed", extra={"peer": ip, "mechanism": mechanism, "throttled": throttled}
            )
            return AuthResult(
                success=False, handled=False, message=AUTH_THROTTLED if throttled else None
            )
        key, account = found
        if "email:send" not in key.scopes:
            return AuthResult(success=False, handled=False, message=AUTH_SCOPE)
        if isinstance(session, SubmissionSession):
            session.principal = Principal(account_id=account.id, key=key)
        log.info("auth ok", extra={"peer": ip, "key": key.id, "account": account.id})
        return AuthResult(success=True, auth_data=key.id)

    def is_inbound(self, address: str) -> bool:
        """Mail for our own bounce (VERP) domain or feedback address, with a plain local part."""
        local, at, domain = address.rpartition("@")
        if not at or not local or any(c in local for c in '%!@":\\ '):
            return False
        domain = domain.lower()
        return domain == self.bounce_domain or f"{local.lower()}@{domain}" == self.feedback

    # -- hooks ---------------------------------------------------------------------------------
    async def handle_HELO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str
    ) -> str:
        session.host_name = hostname
        return f"250 {self.settings.hostname}"

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname
        auth_ok = self.may_authenticate(server, session)
        lines = [
            r
            for r in responses[:-1]
            if auth_ok or not r.startswith("250-AUTH")  # hide AUTH where it would be refused
        ]
        return [*lines, "250-PIPELINING", "250-ENHANCEDSTATUSCODES", "250 HELP"]

    async def handle_NOOP(
        self, server: SMTP, session: Session, envelope: Envelope, arg: str
    ) -> str:
        return OK

    async def handle_QUIT(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        return BYE

    async def handle_VRFY(
        self, server: SMTP, session: Session, envelope: Envelope, address: str
    ) -> str:
        return VRFY

    async def handle_RSET(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        return OK

    def handle_STARTTLS(self, server: SMTP, session: Session, envelope: Envelope) -> bool:
        return True

    async def handle_AUTH(
        self, server: SMTP, session: Session, envelope: Envelope, args: list[str]
    ) -> Any:
        if not self.may_authenticate(server, session):
            return AUTH_TLS
        # No throttle here: the credentials are read (a refusal now would leave the client's
        # pipelined AUTH LOGIN lines to be read as commands) and a correct key always passes
        # (authlimit's docstring says why); a failure while throttled is answered 454.
        return MISSING  # go on with aiosmtpd's PLAIN / LOGIN, which call ``authenticate``

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        assert isinstance(session, SubmissionSession) and isinstance(envelope, SubmissionEnvelope)
        if not address.isascii() and not envelope.smtp_utf8:
            return NEEDS_SMTPUTF8
        principal = self.principal(session)
        mail_from = "" if address == "<>" else address
        account = None
        if principal is not None:
            account = self.store.accounts.get(principal.account_id)
            if account is None:
                return reply_for(RequestError(401, "the account of this session no longer exists"))
            if mail_from:
                try:
                    self.admission.check_smtp_sender(account, principal.key, mail_from)
                except RequestError as exc:
                    return reply_for(exc)
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        envelope.principal = principal
        envelope.account = account
        return SENDER_OK

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        assert isinstance(envelope, SubmissionEnvelope)
        if len(envelope.rcpt_tos) >= self.max_recipients:
            return TOO_MANY_RECIPIENTS.format(n=self.max_recipients)
        if not address.isascii() and not envelope.smtp_utf8:
            return NEEDS_SMTPUTF8
        inbound = self.is_inbound(address)
        if not inbound:
            if envelope.principal is None:
                log.info("relay denied", extra={"peer": peer_ip(session)})
                return RELAY_DENIED
            if envelope.mail_from in ("", "<>"):
                return NULL_SENDER
            if not valid_recipient(address):
                return BAD_RECIPIENT
        if envelope.inbound is not None and envelope.inbound != inbound:
            return SEPARATE_TRANSACTION
        if inbound and envelope.inbound is None:  # the first report recipient: cap the peer
            refused = self.reports.too_big(declared_size(envelope.mail_options))
            refused = refused or self.reports.start(peer_ip(session))
            if refused is not None:
                log.info("report refused", extra={"peer": peer_ip(session), "reply": refused})
                return refused
        envelope.inbound = inbound
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return RECIPIENT_OK

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope, SubmissionEnvelope)
        data = envelope.original_content or b""
        mail_from = "" if envelope.mail_from in (None, "<>") else str(envelope.mail_from)
        ip = peer_ip(session)
        try:
            if envelope.inbound:
                if len(data) > self.reports.max_bytes:  # read in full only by aiosmtpd's own DATA
                    return REPORT_TOO_BIG.format(n=self.reports.max_bytes)
                ref = await self.inbound.accept(
                    mail_from=mail_from, rcpts=list(envelope.rcpt_tos), data=data, peer=ip
                )
                return INBOUND_OK.format(id=ref)
            principal, account = envelope.principal, envelope.account
            if principal is None or account is None:  # RCPT would have refused: defensive
                return RELAY_DENIED
            accepted = await self.admission.submit_smtp(
                account=account,
                key=principal.key,
                mail_from=mail_from,
                rcpts=list(envelope.rcpt_tos),
                data=data,
                peer=ip,
                helo=session.host_name or "",
                protocol=self.protocol(server, session),
            )
        except RequestError as exc:
            return reply_for(exc)
        except StoreUnavailable:
            log.warning("store unavailable", extra={"peer": ip})
            return STORE_UNAVAILABLE
        except Exception:  # answered here so aiosmtpd still resets the transaction
            log.exception("smtp data error", extra={"peer": ip})
            return INTERNAL
        return QUEUED.format(id=accepted.id)

    async def handle_exception(self, error: Exception) -> str:
        if isinstance(error, StoreUnavailable):
            log.warning("store unavailable")
            return STORE_UNAVAILABLE
        log.error("smtp session error", exc_info=error)
        return INTERNAL

    def protocol(self, server: SMTP, session: Session) -> str:
        """RFC 3848 ``with`` keyword for the Received header."""
        proto = "ESMTP" if session.extended_smtp else "SMTP"
        if tls_active(server):
            proto += "S"
        if session.authenticated:
            proto += "A"
        return proto


# -- the server ---------------------------------------------------------------------------------
_COMMAND_LIMITS = {
    "MAIL": 1000,
    "RCPT": 51_000,
    "DATA": 1000,
    "RSET": 1000,
    "NOOP": 100,
    "EHLO": 10,
    "HELO": 10,
    "AUTH": 10,
    "STARTTLS": 2,
    "*": 20,
}
_IN_TRANSACTION = frozenset({"RCPT", "DATA", "RSET", "QUIT", "NOOP"})


_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_DOT_ATOM = rf"{_ATEXT}(?:\.{_ATEXT})*"
_PLAIN_PATH = re.compile(rf"<({_DOT_ATOM}@{_DOT_ATOM})>[ \t]*(.*)", re.DOTALL)


def parse_path(arg: str) -> tuple[str | None, str | None]:
    """The address and the rest of a MAIL/RCPT argument: aiosmtpd 1.4's ``_getaddr`` (the
    ``email`` header parser; (None, None) when unparsable) without its local-part limit.

    The usual ``<local@domain> [params]`` (ASCII dot-atoms) is answered by one regular
    expression: the header parser builds a token tree for it, which was ~10% of a message's
    cost. Anything else (quotes, comments, literals, encoded words, UTF-8) goes to the parser;
    both give the same answer on the fast path's inputs (tested against each other)."""
    if not arg:
        return "", ""
    plain = _PLAIN_PATH.fullmatch(arg)
    if plain is not None and "=?" not in plain[1] and not plain[2].startswith("("):
        return plain[1], plain[2]
    address: Any
    try:
        if arg.lstrip().startswith("<"):
            address, rest = get_angle_addr(arg)
        else:
            address, rest = get_addr_spec(arg)
    except HeaderParseError:
        return None, None
    return str(address.addr_spec), str(rest)


class _Guarded:
    """One command about to run: refused with 421 while draining, marked busy while running."""

    __slots__ = ("method", "name", "smtp")

    def __init__(self, smtp: SubmissionSMTP, name: str, method: Any) -> None:
        self.smtp = smtp
        self.name = name
        self.method = method  # the class's function: bound here, on use

    def __getattr__(self, attr: str) -> Any:  # __smtp_syntax__ and friends, for HELP
        return getattr(self.method, attr)

    async def __call__(self, arg: Any) -> None:
        smtp = self.smtp
        if smtp._gateway.draining and not smtp._may_finish(self.name):
            await smtp.push(SHUTTING_DOWN)
            smtp.close()
            return
        smtp.busy = True
        try:
            await self.method(smtp, arg)
        finally:
            smtp.busy = False


class _Dispatch(dict[str, Any]):
    """aiosmtpd's command table: command → the SMTP class's ``smtp_*`` function (binding all of
    them for every connection was a noticeable part of its cost); ``get`` (its dispatch) hands
    out guarded commands."""

    def __init__(self, smtp: SubmissionSMTP, functions: Mapping[str, Any]) -> None:
        super().__init__(functions)
        self.smtp = smtp

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        method = super().get(key, default)
        return None if method is None else _Guarded(self.smtp, key, method)


#: The aiosmtpd release whose ``SMTP.__init__`` ``SubmissionSMTP._setup`` reproduces (the tests
#: compare the two); with any other release every connection runs aiosmtpd's own constructor.
AIOSMTPD_SETUP_VERIFIED = "1.4.6"
#: The fast paths below (``_setup``, the timer, DATA, push) stand in for that release's code.
_VERIFIED = aiosmtpd.__version__ == AIOSMTPD_SETUP_VERIFIED
_aiosmtpd_sanitized_log = aiosmtpd.smtp.sanitized_log
_LOG_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING}


def _sanitized_log(func: Callable[..., None], msg: Any, *args: Any, **kwargs: Any) -> None:
    """aiosmtpd's ``sanitized_log``, which sanitises its arguments before the logger decides
    whether to log at all (twice per command line); here the logger's level is asked first."""
    logger = getattr(func, "__self__", None)
    level = _LOG_LEVELS.get(getattr(func, "__name__", ""))
    if isinstance(logger, logging.Logger) and level is not None and not logger.isEnabledFor(level):
        return
    _aiosmtpd_sanitized_log(func, msg, *args, **kwargs)


def install_quiet_log() -> None:
    """Put ``_sanitized_log`` in aiosmtpd's module (idempotent; only for the verified release)."""
    if _VERIFIED:
        aiosmtpd.smtp.sanitized_log = _sanitized_log


@dataclass(frozen=True)
class _Introspection:
    """What aiosmtpd's constructor finds by looking at the SMTP class and the handler, by name."""

    auth: tuple[tuple[str, str, bool], ...]  # (mechanism, attribute, builtin: on the SMTP object)
    hooks: tuple[str, ...]  # handle_* attributes of the handler
    ehlo_hook_ver: str | None
    commands: Mapping[str, Any]  # command → smtp_* function of the SMTP class

    @classmethod
    def of(cls, smtp: SMTP, handler: Any) -> _Introspection:
        """The same lookups as aiosmtpd 1.4's ``SMTP.__init__``, keeping names, not bound methods."""
        auth: dict[str, tuple[str, bool]] = {}
        for obj in (smtp, handler):
            for name, member in inspect.getmembers(obj):
                if name.startswith("auth_"):
                    mechanism = getattr(
                        member,
                        "__auth_mechanism_name__",
                        name.replace("auth_", "").replace("__", "-"),
                    )
                    auth[mechanism] = (name, obj is smtp)
        hooks = tuple(m for m in dir(handler) if m.startswith("handle_"))
        ehlo_hook_ver = None
        if "handle_EHLO" in hooks:
            params = len(inspect.signature(handler.handle_EHLO).parameters)
            ehlo_hook_ver = {4: "old", 5: "new"}.get(params)
            if ehlo_hook_ver is None:
                raise RuntimeError("Unsupported EHLO Hook")
        commands = {m[5:]: getattr(type(smtp), m) for m in dir(smtp) if m.startswith("smtp_")}
        return cls(
            auth=tuple((mech, name, builtin) for mech, (name, builtin) in auth.items()),
            hooks=hooks,
            ehlo_hook_ver=ehlo_hook_ver,
            commands=commands,
        )


class SubmissionSMTP(SMTP):
    """aiosmtpd's SMTP with our session type, reply translation and graceful shutdown (421)."""

    _dir_cache: list[str] | None = None
    #: Per handler class: aiosmtpd's constructor introspects both objects on every connection
    #: (inspect.getmembers, inspect.signature: ~10% of a connection's cost); the answer is a
    #: property of the classes, so it is computed once.
    _introspected: ClassVar[dict[tuple[type, type], _Introspection]] = {}

    _slot: tuple[Listener, str] | None = None  # what ConnectionSlots counted for this connection
    _refused: str | None = None  # which connection cap refused it

    def __init__(
        self,
        handler: SubmissionHandler,
        gateway: SmtpGateway,
        listener: Listener | None = None,
        **options: Any,
    ) -> None:
        """``listener``: the listening socket's connection count (None: no caps). ``options``:
        the keywords of ``_setup`` (aiosmtpd's constructor's, for the verified release:
        ``_setup`` reproduces it; any other release runs its own)."""
        self._listener = listener
        if _VERIFIED:
            self._setup(handler, gateway, **options)
        else:
            super().__init__(handler, **options)
            self._smtp_methods = {
                name: getattr(method, "__func__", method)
                for name, method in self._smtp_methods.items()
            }
        self._gateway = gateway
        self.busy = False
        self._held: list[str] = []
        self._smtp_methods = _Dispatch(self, self._smtp_methods)

    def _setup(
        self,
        handler: SubmissionHandler,
        gateway: SmtpGateway,
        *,
        loop: asyncio.AbstractEventLoop,
        hostname: str,
        ident: str,
        data_size_limit: int,
        enable_SMTPUTF8: bool,
        decode_data: bool,
        tls_context: ssl.SSLContext | None,
        timeout: float,
        auth_require_tls: bool,
        authenticator: Any,
        command_call_limit: dict[str, int],
    ) -> None:
        """aiosmtpd 1.4.6's ``SMTP.__init__`` for the arguments above (the others at their
        defaults), with the introspection of the SMTP class and the handler taken from the
        per-class cache. The AUTH mechanisms and hooks are bound to this connection's objects;
        the commands are the class's functions, bound on dispatch (``_Dispatch``)."""
        key = (type(self), type(handler))
        found = self._introspected.get(key)
        if found is None:
            found = self._introspected[key] = _Introspection.of(self, handler)
        self.__ident__ = ident
        self.loop = loop
        asyncio.StreamReaderProtocol.__init__(
            self,
            asyncio.StreamReader(loop=loop, limit=self.line_length_limit),
            client_connected_cb=self._cb_client_connected,
            loop=loop,
        )
        self.event_handler = handler
        self.data_size_limit = data_size_limit
        self.enable_SMTPUTF8 = enable_SMTPUTF8
        self._decode_data = decode_data
        self.command_size_limits.clear()
        self.hostname = hostname
        self.tls_context = tls_context
        if tls_context and tls_context.verify_mode not in {ssl.CERT_NONE, ssl.CERT_OPTIONAL}:
            aiosmtpd_log.warning("tls_context.verify_mode not in {CERT_NONE, CERT_OPTIONAL}")
        elif tls_context and tls_context.check_hostname:
            aiosmtpd_log.warning("tls_context.check_hostname == True")
        self.require_starttls = tls_context and False
        self._timeout_duration = timeout
        self._timeout_handle = None
        self._tls_handshake_okay = True
        self._tls_protocol = None
        self._original_transport = None
        self.session = None
        self.envelope = None
        self.transport = None
        self._handler_coroutine = None
        self._auth_require_tls = auth_require_tls
        self._proxy_timeout = None
        self._authenticator = authenticator
        self._auth_callback = None
        self._auth_required = False
        self._auth_methods = {
            mechanism: _AuthMechAttr(getattr(self if builtin else handler, name), builtin)
            for mechanism, name, builtin in found.auth
        }
        hooks = gateway.bound_hooks  # the handler's methods: the same for every connection
        if hooks is None or hooks[0] is not handler:
            hooks = gateway.bound_hooks = (
                handler,
                {m[7:]: getattr(handler, m) for m in found.hooks},
            )
        self._handle_hooks = dict(hooks[1])
        self._ehlo_hook_ver = found.ehlo_hook_ver
        # wrapped by __init__ in a per-connection _Dispatch
        self._smtp_methods = found.commands  # type: ignore[assignment]
        self._enforce_call_limit = True
        self._call_limit_base = command_call_limit
        self._call_limit_default = command_call_limit.get("*", CALL_LIMIT_DEFAULT)

    def __dir__(self) -> list[str]:
        """Only what aiosmtpd looks up by name (smtp_*, auth_*): its per-connection introspection
        of every attribute is most of the cost of a new connection otherwise."""
        cls = type(self)
        if cls._dir_cache is None:
            cls._dir_cache = [n for n in dir(cls) if n.startswith(("smtp_", "auth_"))]
        return list(cls._dir_cache)

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        addr, rest = parse_path(arg)
        limit = self.local_part_limit
        if addr and limit and len(addr.rpartition("@")[0]) > limit:
            return None, None
        return addr, rest

    # -- the session timeout: one timer per connection, not one per command -------------------
    _deadline = 0.0  # when the session times out (loop time), moved on by every command
    _armed_for = 0.0  # when the pending timer fires

    def _reset_timeout(self, duration: float | None = None) -> None:
        """aiosmtpd cancels and re-creates a timer for every command; here a command only moves
        the deadline, and a timer that fires early waits for the rest (same timeout, one timer)."""
        if not _VERIFIED:
            super()._reset_timeout(duration)
            return
        loop = self.loop
        deadline = self._deadline = loop.time() + (duration or self._timeout_duration)
        handle = self._timeout_handle
        if handle is None or self._armed_for > deadline:  # first, or a shorter timeout now
            if handle is not None:
                handle.cancel()
            self._armed_for = deadline
            self._timeout_handle = loop.call_at(deadline, self._timeout_due)

    def _timeout_due(self) -> None:
        if self._deadline > self.loop.time():
            self._armed_for = self._deadline
            self._timeout_handle = self.loop.call_at(self._deadline, self._timeout_due)
            return
        self._timeout_cb()  # type: ignore[no-untyped-call]

    # -- DATA, read a chunk at a time -----------------------------------------------------------
    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        """aiosmtpd 1.4.6's ``smtp_DATA`` with the message read by ``smtpdata.read_message``
        (same replies, same content; ``decode_data`` is off here)."""
        if not _VERIFIED or self._decode_data or "DATA" not in self._handle_hooks:
            await super().smtp_DATA(arg)
            return
        if await self.check_helo_needed():
            return
        if await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        limit, too_much = self.data_size_limit, "552 Error: Too much mail data"
        handler = self.event_handler
        if (
            getattr(self.envelope, "inbound", False)
            and isinstance(handler, SubmissionHandler)
            and (not limit or handler.reports.max_bytes < limit)
        ):  # a report: read no more than its cap
            limit = handler.reports.max_bytes
            too_much = REPORT_TOO_BIG.format(n=limit)
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        try:
            state, content = await read_message(
                self._reader, size_limit=limit, line_limit=self.line_length_limit
            )
        except asyncio.CancelledError:  # the connection went away during DATA
            self._writer.close()
            raise
        if state is DataState.TOO_LONG:
            await self.push("500 Line too long (see RFC5321 4.5.3.1.6)")
            self._set_post_data_state()  # type: ignore[no-untyped-call]
            return
        if state is DataState.TOO_MUCH:
            await self.push(too_much)
            self._set_post_data_state()  # type: ignore[no-untyped-call]
            return
        self.envelope.content = content
        self.envelope.original_content = content
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()  # type: ignore[no-untyped-call]
        await self.push("250 OK" if status is MISSING else status)

    def _may_finish(self, command: str) -> bool:
        """While draining, a transaction under way may still finish; nothing new starts."""
        envelope = self.envelope
        return command == "QUIT" or (
            envelope is not None and bool(envelope.mail_from) and command in _IN_TRANSACTION
        )

    @property
    def idle(self) -> bool:
        return not self.busy and (self.envelope is None or not self.envelope.mail_from)

    def _create_session(self) -> Session:
        return SubmissionSession(self.loop)

    def _create_envelope(self) -> Envelope:
        return SubmissionEnvelope()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        first = self.transport is None
        if first and self._listener is not None:
            ip = peer_ip_of(transport.get_extra_info("peername"))
            self._refused = self._gateway.slots.take(self._listener, ip)
            if self._refused is None:
                self._slot = (self._listener, ip)
        super().connection_made(transport)
        if first:
            self._gateway.connections.add(self)

    def connection_lost(self, error: Exception | None) -> None:
        self._gateway.connections.discard(self)
        slot, self._slot = self._slot, None
        if slot is not None:
            self._gateway.slots.give_back(*slot)
        super().connection_lost(error)

    async def _handle_client(self) -> None:
        """aiosmtpd's session; a connection over a cap is greeted with 421 and closed instead."""
        if self._refused is not None:
            await self.push(TOO_MANY_FROM_CLIENT if self._refused == "client" else TOO_MANY)
            self.close()
            return
        await super()._handle_client()

    @syntax("STARTTLS", when="tls_context")
    async def smtp_STARTTLS(self, arg: str) -> None:
        """aiosmtpd answers STARTTLS inside TLS with 220 and a TLS handshake inside the TLS
        session (the client sees EOF), and 454 on the implicit-TLS port: both are 503 here."""
        if tls_active(self):
            await self.push(TLS_ACTIVE)
            return
        await super().smtp_STARTTLS(arg)

    async def push(self, status: Any) -> None:
        """Send one reply line; the lines of a multi-line reply (``250-...``, as EHLO sends them
        one push each) are held and go out in one write with their last line (one syscall
        instead of one per line: writes were a fifth of the event loop's time)."""
        if isinstance(status, str):
            status = translate(status)
            if status[3:4] == "-":
                self._held.append(status)
                return
            if self._held:
                status = "\r\n".join([*self._held, status])
                self._held.clear()
        elif self._held:
            held, self._held = self._held, []
            await self._send("\r\n".join(held))
        await self._send(status)

    async def _send(self, status: str | bytes) -> None:
        """aiosmtpd's ``push`` (encode, write, drain) without the drain's coroutine chain when
        the transport's buffer is below its high-water mark (the drain would return at once)."""
        if not _VERIFIED:
            await super().push(status)  # type: ignore[type-var]
            return
        if isinstance(status, str):
            data = status.encode("utf-8" if self.enable_SMTPUTF8 else "ascii")
        else:
            data = status
        self._writer.write(data + b"\r\n")
        transport = self.transport
        if transport is None or transport.is_closing() or getattr(self, "_paused", True):
            await self._writer.drain()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def goodbye(self) -> None:
        """Unsolicited 421 and close (an idle session when the server stops)."""
        if self.transport is not None and not self.transport.is_closing():
            with contextlib.suppress(Exception):
                self._writer.write(SHUTTING_DOWN.encode("ascii") + b"\r\n")
        self.close()


def server_tls_context(settings: Settings) -> ssl.SSLContext | None:
    """The server certificate for STARTTLS and implicit TLS, when configured."""
    if not settings.smtp.tls_cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(settings.smtp.tls_cert, settings.smtp.tls_key)
    return context


class SmtpGateway:
    """Listeners for plain/STARTTLS and implicit-TLS submission on the running loop."""

    def __init__(
        self,
        *,
        admission: Admission,
        settings: Settings,
        clock: Clock,
        inbound: InboundSink | None = None,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self.settings = settings
        self.handler = SubmissionHandler(
            admission=admission, settings=settings, clock=clock, inbound=inbound
        )
        self.tls_context = tls_context if tls_context is not None else server_tls_context(settings)
        self.servers: list[asyncio.Server] = []
        self.connections: set[SubmissionSMTP] = set()
        self.bound_hooks: tuple[SubmissionHandler, dict[str, Any]] | None = None
        self.draining = False
        self.slots = ConnectionSlots(
            per_client=settings.smtp.max_connections_per_client,
            exempt=lambda ip: self.handler.trusted_account(ip) is not None,
            clock=clock,
        )
        # aiosmtpd's logger logs every command line at INFO
        if aiosmtpd_log.level == logging.NOTSET:
            aiosmtpd_log.setLevel(logging.WARNING)
        install_quiet_log()
        wirelog.install()  # aiosmtpd's lines keep no client text (no AUTH data, no commands)

    def _factory(
        self, *, implicit_tls: bool, listener: Listener | None = None
    ) -> Callable[[], SubmissionSMTP]:
        s = self.settings
        loop = asyncio.get_running_loop()  # aiosmtpd would look it up per connection
        return lambda: SubmissionSMTP(
            self.handler,
            self,
            listener,
            loop=loop,
            hostname=s.hostname,
            ident="relaygate",
            data_size_limit=s.smtp.max_message_bytes,
            enable_SMTPUTF8=True,
            decode_data=False,
            tls_context=None if implicit_tls else self.tls_context,
            timeout=s.smtp.timeout,
            auth_require_tls=False,  # enforced in handle_AUTH, with the loopback exception
            authenticator=self.handler.authenticate,
            command_call_limit=_COMMAND_LIMITS,
        )

    async def start(self, sock: socket.socket, *, implicit_tls: bool = False) -> asyncio.Server:
        """Serve on a bound, listening socket (port 0 is fine). Implicit TLS needs a certificate."""
        loop = asyncio.get_running_loop()
        if implicit_tls and self.tls_context is None:
            raise ValueError("implicit TLS needs smtp.tls_cert and smtp.tls_key")
        host, port = sock.getsockname()[:2]
        listener = Listener(
            limit=self.settings.smtp.max_connections,
            name=f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
        )
        server = await loop.create_server(
            self._factory(implicit_tls=implicit_tls, listener=listener),
            sock=sock,
            ssl=self.tls_context if implicit_tls else None,
            ssl_handshake_timeout=30.0 if implicit_tls else None,
        )
        self.servers.append(server)
        return server

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop accepting; idle sessions get 421 now, open transactions may finish within ``timeout``."""
        self.draining = True
        for server in self.servers:
            server.close()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.connections and loop.time() < deadline:
            for conn in list(self.connections):
                if conn.idle:
                    conn.goodbye()
            await asyncio.sleep(0.02)
        for conn in list(self.connections):
            conn.goodbye()
        self.servers.clear()


def addresses(servers: Sequence[asyncio.Server]) -> list[str]:
    out = []
    for server in servers:
        for sock in server.sockets:
            host, port = sock.getsockname()[:2]
            out.append(f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
    return out
