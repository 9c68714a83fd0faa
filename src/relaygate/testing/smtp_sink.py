"""A scriptable SMTP sink on loopback: the remote MX host or smarthost in tests (and users' tests).

    async with SmtpSink(rcpt={"nobody@x.test": "550 5.1.1 user unknown"}) as sink:
        ... deliver to 127.0.0.1:sink.port ...
        [msg] = await sink.wait_for(1)
        assert msg.rcpt_tos == ["somebody@x.test"] and msg.tls

It runs aiosmtpd's ``SMTP`` protocol on the *running* asyncio loop, listening on an ephemeral
port of 127.0.0.1 (the threaded ``Controller`` cannot use port 0); ``host``/``port`` choose
another loopback address or a fixed port (e.g. the same port on ``::1`` as a second MX host). Every handler hook is
implemented (a missing ``handle_RCPT``/``handle_DATA`` would silently accept and drop mail) and
``handle_exception`` answers ``451 4.3.0`` without internals.

Scripting (all of it may be changed while the sink runs, e.g. ``sink.rcpt["a@x"] = "250 ok"``):

- a reply is a string (``"450 4.2.0 greylisted"``) or a list of strings consumed one per use,
  the last one repeating (``["450 4.2.0 greylisted", "250 ok"]`` greylists once);
- ``greeting``: the banner (a non-2xx banner is sent and the connection closed);
- ``mail``: reply to MAIL FROM, or a callable sender → reply (None for the default);
- ``rcpt``: a dict recipient → reply (unknown recipients get ``default_rcpt``) or a callable
  recipient → reply (None for ``default_rcpt``);
- ``data``: reply to the end of DATA, or a callable ``ReceivedMessage`` → reply;
- behaviours: ``delay`` (seconds before every reply), ``data_delay`` (before the DATA reply
  only), ``drop_after_greeting``, ``disconnect_in_data`` (the whole message is read, then the
  connection is closed without a reply: the client cannot know whether it was delivered);
  ``tarpit``: an ``asyncio.Event`` the reply to DATA waits for (a receiver as slow as the test
  wants, without sleeping); the messages waiting are in ``held``.

It records every accepted message (``messages``), every command with whether TLS was on
(``commands``), AUTH attempts (``auth_attempts``) and connections (``connections``);
``drop_connections()`` closes the open ones (an idle time-out as the client sees it). It trusts
nothing it receives and is meant for loopback tests only; it holds test credentials in clear.
"""

from __future__ import annotations

import asyncio
import re
import ssl
from collections.abc import Callable, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.smtp import MISSING, SMTP, AuthResult, Envelope, LoginPassword, Session

Reply = str | Sequence[str]
RcptScript = MutableMapping[str, Reply] | Callable[[str], str | None]
MailScript = Reply | Callable[[str], str | None] | None

_CODE = re.compile(r"^([2-5])\d\d")


@dataclass(frozen=True, kw_only=True)
class ReceivedMessage:
    """One message the sink accepted (its DATA was answered 2xx); the null sender is ``""``."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    tls: bool
    tls_version: str | None
    auth: tuple[str, str] | None
    helo: str | None
    mail_options: tuple[str, ...]
    peer: str | None


@dataclass(frozen=True, kw_only=True)
class Command:
    """One command the sink saw (verb and argument, and whether the session was under TLS)."""

    verb: str
    arg: str
    tls: bool


@dataclass(kw_only=True)
class _Cursor:
    """Per-reply-script use counters, so list replies are consumed in order."""

    uses: dict[str, int] = field(default_factory=dict)


def _pick(reply: Reply, key: str, cursor: _Cursor) -> str:
    if isinstance(reply, str):
        return reply
    replies = list(reply)
    if not replies:
        raise ValueError("an empty reply list")
    n = cursor.uses.get(key, 0)
    cursor.uses[key] = n + 1
    return replies[min(n, len(replies) - 1)]


def _is_ok(reply: str) -> bool:
    match = _CODE.match(reply)
    return bool(match and match.group(1) == "2")


class _SinkSMTP(SMTP):  # type: ignore[misc]
    """aiosmtpd's protocol plus the sink's greeting and delay behaviours."""

    def __init__(self, sink: SmtpSink, *args: Any, **kwargs: Any) -> None:
        self._sink = sink
        super().__init__(*args, **kwargs)

    async def push(self, status: Any) -> None:
        if self._sink.delay:
            await asyncio.sleep(self._sink.delay)
        await super().push(status)

    async def _handle_client(self) -> None:
        sink = self._sink
        sink.connections += 1
        sink._open.add(self)
        try:
            await self._serve(sink)
        finally:
            sink._open.discard(self)

    async def _serve(self, sink: SmtpSink) -> None:
        greeting = sink.greeting
        if greeting is not None:
            text = _pick(greeting, "greeting", sink._cursor)
            if not text.startswith("220"):
                await self.push(text)
                self._close()
                return
        if sink.drop_after_greeting:
            await self.push(f"220 {self.hostname} ESMTP sink")
            self._close()
            return
        await super()._handle_client()

    def _close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class _Handler:
    """Every aiosmtpd hook, answering from the sink's scripts."""

    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    def _tls(self, server: SMTP) -> tuple[bool, str | None]:
        transport = server.transport
        ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
        if ssl_object is None:
            return False, None
        return True, str(ssl_object.version())

    def _log(self, server: SMTP, verb: str, arg: str) -> None:
        self.sink.commands.append(Command(verb=verb, arg=arg, tls=self._tls(server)[0]))

    async def handle_HELO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str
    ) -> str:
        self._log(server, "HELO", hostname)
        session.host_name = hostname
        return f"250 {server.hostname}"

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        self._log(server, "EHLO", hostname)
        session.host_name = hostname
        if self.sink.ehlo is not None:
            return [_pick(self.sink.ehlo, "ehlo", self.sink._cursor)]
        return responses

    async def handle_NOOP(
        self, server: SMTP, session: Session, envelope: Envelope, arg: str
    ) -> str:
        self._log(server, "NOOP", arg or "")
        return "250 2.0.0 OK"

    async def handle_QUIT(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self._log(server, "QUIT", "")
        return "221 2.0.0 Bye"

    async def handle_RSET(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self._log(server, "RSET", "")
        return "250 2.0.0 OK"

    async def handle_VRFY(
        self, server: SMTP, session: Session, envelope: Envelope, address: str
    ) -> str:
        self._log(server, "VRFY", address)
        return "252 2.5.2 Cannot VRFY user"

    def handle_STARTTLS(self, server: SMTP, session: Session, envelope: Envelope) -> bool:
        self.sink.commands.append(Command(verb="STARTTLS", arg="", tls=True))
        return True

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        self._log(server, "MAIL", address)
        sink = self.sink
        reply: str | None = None
        script = sink.mail
        if callable(script):
            reply = script(address)
        elif script is not None:
            reply = _pick(script, "mail", sink._cursor)
        reply = reply or "250 2.1.0 OK"
        if _is_ok(reply):
            envelope.mail_from = address
            envelope.mail_options.extend(options)
        return reply

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        self._log(server, "RCPT", address)
        sink = self.sink
        reply: str | None = None
        script = sink.rcpt
        if callable(script):
            reply = script(address)
        elif address in script:
            reply = _pick(script[address], "rcpt:" + address, sink._cursor)
        elif address.lower() in script:
            reply = _pick(script[address.lower()], "rcpt:" + address.lower(), sink._cursor)
        reply = reply or _pick(sink.default_rcpt, "rcpt:*", sink._cursor)
        if _is_ok(reply):
            envelope.rcpt_tos.append(address)
            envelope.rcpt_options.extend(options)
        return reply

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self._log(server, "DATA", "")
        sink = self.sink
        content = envelope.original_content or b""
        tls, version = self._tls(server)
        auth = session.auth_data
        message = ReceivedMessage(
            mail_from="" if envelope.mail_from == "<>" else str(envelope.mail_from),
            rcpt_tos=tuple(envelope.rcpt_tos),
            data=bytes(content),
            tls=tls,
            tls_version=version,
            auth=(auth.login.decode(), auth.password.decode())
            if isinstance(auth, LoginPassword)
            else None,
            helo=session.host_name,
            mail_options=tuple(envelope.mail_options),
            peer=str(session.peer) if session.peer is not None else None,
        )
        if sink.disconnect_in_data:
            sink.dropped.append(message)
            if server.transport is not None:
                server.transport.close()
            # connection_lost() cancels this coroutine; never answer.
            await asyncio.Event().wait()
        if sink.data_delay:
            await asyncio.sleep(sink.data_delay)
        if sink.tarpit is not None:
            sink.held.append(message)
            try:
                await sink.tarpit.wait()
            finally:
                sink.held.remove(message)
        reply: str | None = None
        script = sink.data
        if callable(script):
            reply = script(message)
        elif script is not None:
            reply = _pick(script, "data", sink._cursor)
        reply = reply or "250 2.0.0 OK queued"
        if _is_ok(reply):
            await sink._accept(message)
        else:
            sink.refused.append(message)
        return reply

    async def handle_AUTH(
        self, server: SMTP, session: Session, envelope: Envelope, args: list[str]
    ) -> Any:
        self._log(server, "AUTH", args[0] if args else "")
        return MISSING  # let aiosmtpd run the mechanism; the authenticator decides

    async def handle_PROXY(
        self, server: SMTP, session: Session, envelope: Envelope, data: Any
    ) -> bool:
        return False

    async def handle_exception(self, error: Exception) -> str:
        self.sink.errors.append(error)
        return "451 4.3.0 Internal error"


class SmtpSink:
    """A scriptable SMTP server on 127.0.0.1 (ephemeral port) on the running loop."""

    def __init__(
        self,
        *,
        hostname: str = "sink.test",
        greeting: Reply | None = None,
        ehlo: Reply | None = None,
        mail: MailScript = None,
        rcpt: RcptScript | None = None,
        default_rcpt: Reply = "250 2.1.5 OK",
        data: Reply | Callable[[ReceivedMessage], str | None] | None = None,
        delay: float = 0.0,
        data_delay: float = 0.0,
        drop_after_greeting: bool = False,
        disconnect_in_data: bool = False,
        tls_context: ssl.SSLContext | None = None,
        implicit_tls: bool = False,
        require_starttls: bool = False,
        auth: tuple[str, str] | None = None,
        auth_required: bool = False,
        auth_require_tls: bool | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        data_size_limit: int = 33554432,
    ) -> None:
        if implicit_tls and tls_context is None:
            raise ValueError("implicit_tls needs a tls_context")
        self.hostname = hostname
        self.greeting = greeting
        self.ehlo = ehlo
        self.mail = mail
        self.rcpt: RcptScript = rcpt if rcpt is not None else {}
        self.default_rcpt = default_rcpt
        self.data = data
        self.delay = delay
        self.data_delay = data_delay
        self.drop_after_greeting = drop_after_greeting
        self.tarpit: asyncio.Event | None = None
        self.held: list[ReceivedMessage] = []
        self.disconnect_in_data = disconnect_in_data
        self.tls_context = tls_context
        self.implicit_tls = implicit_tls
        self.require_starttls = require_starttls
        self.auth = auth
        self.auth_required = auth_required
        # Implicit TLS is TLS, but aiosmtpd only knows about STARTTLS: let AUTH through there.
        if auth_require_tls is None:
            auth_require_tls = tls_context is not None and not implicit_tls
        self.auth_require_tls = auth_require_tls
        self.host = host
        self.port = port
        self.data_size_limit = data_size_limit
        self.messages: list[ReceivedMessage] = []
        self.dropped: list[ReceivedMessage] = []
        self.refused: list[ReceivedMessage] = []
        self.commands: list[Command] = []
        self.auth_attempts: list[tuple[str, str, bool]] = []
        self.errors: list[Exception] = []
        self.connections = 0
        self._open: set[_SinkSMTP] = set()
        self._cursor = _Cursor()
        self._server: asyncio.AbstractServer | None = None
        self._changed: asyncio.Condition | None = None

    # -- scripting helpers -----------------------------------------------------------------------
    def reset_counters(self) -> None:
        """Restart every list reply from its first element."""
        self._cursor = _Cursor()

    def drop_connections(self) -> int:
        """Close every open client connection now, without a reply (an idle time-out or a
        restart, as the client sees it). Returns how many were open."""
        open_now = list(self._open)
        for protocol in open_now:
            protocol._close()
        return len(open_now)

    def verbs(self) -> list[str]:
        """The command verbs seen so far, in order."""
        return [c.verb for c in self.commands]

    # -- authentication ---------------------------------------------------------------------------
    def _authenticator(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login = auth_data.login.decode(errors="replace")
        password = auth_data.password.decode(errors="replace")
        ok = self.auth is not None and (login, password) == self.auth
        self.auth_attempts.append((login, password, ok))
        if not ok:
            return AuthResult(success=False, handled=False)
        return AuthResult(success=True, auth_data=auth_data)

    # -- lifecycle --------------------------------------------------------------------------------
    def _factory(self) -> SMTP:
        kwargs: dict[str, Any] = {
            "hostname": self.hostname,
            "ident": "ESMTP sink",
            "auth_require_tls": self.auth_require_tls,
            "auth_required": self.auth_required,
            "loop": asyncio.get_running_loop(),
            "data_size_limit": self.data_size_limit,
        }
        if self.auth is not None:
            kwargs["authenticator"] = self._authenticator
        else:
            kwargs["auth_exclude_mechanism"] = ["LOGIN", "PLAIN"]
        if self.tls_context is not None and not self.implicit_tls:
            kwargs["tls_context"] = self.tls_context
            kwargs["require_starttls"] = self.require_starttls
        return _SinkSMTP(self, _Handler(self), **kwargs)

    async def start(self) -> SmtpSink:
        loop = asyncio.get_running_loop()
        self._changed = asyncio.Condition()
        self._server = await loop.create_server(
            self._factory,
            host=self.host,
            port=self.port,
            ssl=self.tls_context if self.implicit_tls else None,
        )
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            try:
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
            except TimeoutError:
                pass
            self._server = None

    async def __aenter__(self) -> SmtpSink:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- observing --------------------------------------------------------------------------------
    async def _accept(self, message: ReceivedMessage) -> None:
        self.messages.append(message)
        if self._changed is not None:
            async with self._changed:
                self._changed.notify_all()

    async def wait_for(self, count: int, timeout: float = 5.0) -> list[ReceivedMessage]:
        """Wait until at least ``count`` messages were accepted; TimeoutError otherwise."""
        if self._changed is None:
            raise RuntimeError("the sink is not started")
        changed = self._changed

        async def enough() -> None:
            async with changed:
                await changed.wait_for(lambda: len(self.messages) >= count)

        await asyncio.wait_for(enough(), timeout)
        return list(self.messages)

    def recipients(self) -> list[str]:
        """Every recipient of every accepted message, in order."""
        return [r for m in self.messages for r in m.rcpt_tos]


__all__ = ["Command", "ReceivedMessage", "SmtpSink"]
