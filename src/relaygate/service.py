"""``relaygate serve``: runs the roles (http, smtp, relay, webhooks) in one asyncio process.

Each role is a task on one loop over one store. Before anything starts (``prepare``), the host
is checked (``ops.preflight``: an initialised, writable state directory, TLS files that load),
each role is locked on the state directory and every listener is bound; any problem stops the
start with every reason at once (``StartupError``), before the process has touched anything a
running instance owns. SIGTERM drains: listeners stop taking new work, in-flight work finishes
(bounded by a timeout), leases are released, the writer flushes. When the listeners are up, the
actual addresses are written to ``<state_dir>/run/<role>.json`` per role (``ops.runstate``,
rewritten as a heartbeat) and sd_notify READY is sent, so tests, ``relaygate status`` and
service managers know where and when it is up.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import signal
import socket
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any

import uvicorn

from relaygate.bounces.inbound import InboundProcessor
from relaygate.clock import Clock, SystemClock
from relaygate.compose.renderer import Renderer
from relaygate.dashboard import dashboard_routes
from relaygate.dnsresolver import make_resolver
from relaygate.domains import DomainChecker
from relaygate.errors import StartupError
from relaygate.events.bots import classify_tracking_hit
from relaygate.events.dispatcher import WebhookDispatcher
from relaygate.events.tracking_app import HitRecorder, tracking_routes
from relaygate.gateway.admission import Admission
from relaygate.gateway.authlimit import AuthLimits, FailedAuthThrottle
from relaygate.gateway.http import HttpApi, metrics_app
from relaygate.gateway.httpwire import http_protocol
from relaygate.gateway.smtp import SmtpGateway, addresses
from relaygate.metrics import Metrics
from relaygate.notify import Notifier, watchdog_loop
from relaygate.ops import preflight
from relaygate.ops.runstate import HEARTBEAT_SECONDS, RoleLocks
from relaygate.relay.capture import CaptureTransport
from relaygate.relay.signing import MessageSigner
from relaygate.relay.transport import Transport
from relaygate.relay.worker import DeliveryWorker
from relaygate.settings import ROLES, Settings, parse_hostport
from relaygate.store import new_store
from relaygate.store.models import Outcome, TrackingHit

log = logging.getLogger("relaygate.serve")
#: How long the watchdog waits for the store writer's answer (it answers within ~1.5 s, busy or not).
WATCHDOG_PROBE_SECONDS = 10.0


class _Uvicorn(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:  # we own the signals
        yield


def bind(listen: str) -> socket.socket:
    host, port = parse_hostport(listen)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def _bind_problem(key: str, listen: str, exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        why = "address already in use (another process listens there)"
    elif exc.errno == errno.EACCES:
        why = "permission denied (ports below 1024 need CAP_NET_BIND_SERVICE)"
    elif exc.errno == errno.EADDRNOTAVAIL:
        why = "no such address on this host"
    else:
        why = exc.strerror or str(exc)
    return f"{key} {listen}: cannot listen: {why}"


def _addr(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def make_transport(settings: Settings, metrics: Metrics | None = None) -> Transport:
    mode = settings.delivery.mode
    if mode == "capture":
        return CaptureTransport(settings.capture_dir)
    from relaygate.relay.outbound import make_network_transport

    transport = make_network_transport(settings)
    transport.metrics = metrics
    return transport


class Service:
    def __init__(
        self, settings: Settings, *, roles: Sequence[str] = ROLES, clock: Clock | None = None
    ) -> None:
        self.settings = settings
        self.roles = tuple(roles)
        self.clock = clock or SystemClock()
        self.store = new_store(settings, clock=self.clock)
        self.stop_event = asyncio.Event()
        self.ready_info: dict[str, Any] = {}
        self.worker: DeliveryWorker | None = None
        # The store-derived counters go with the HTTP API's /metrics; a process without it
        # serves its own process metrics on [metrics] listen, if configured.
        self.metrics = Metrics(
            status=self.store.status if "http" in self.roles else None,
            clock=self.clock,
            role="+".join(self.roles),
        )
        self.notifier = Notifier.from_env()
        self.dispatcher: WebhookDispatcher | None = None
        self.checker: DomainChecker | None = None
        self.recorder: HitRecorder | None = None
        self.inbound: InboundProcessor | None = None
        self._sync_worker: DeliveryWorker | None = None
        self._locks: RoleLocks | None = None
        self._probed: tuple[float, bool] | None = None  # (loop time, committed) of the last probe
        self._http_sock: socket.socket | None = None
        self._metrics_sock: socket.socket | None = None
        self._smtp_socks: list[socket.socket] = []
        self._smtps_socks: list[socket.socket] = []
        self.renderer: Renderer | None = None

    def prepare(self) -> None:
        """Check the host, lock this process's roles and bind its listeners; StartupError with
        every problem otherwise (and nothing held). ``run`` calls it if nobody did."""
        if self._locks is not None:
            return
        problems = preflight.problems(self.settings, self.roles)
        if problems:
            raise StartupError(problems)
        locks = RoleLocks.acquire(self.settings.state_dir, self.roles)
        try:
            self._bind_listeners()
        except BaseException:
            self._close_listeners()
            locks.release()
            raise
        self._locks = locks

    def _bind_listeners(self) -> None:
        problems: list[str] = []

        def attempt(key: str, listen: str) -> socket.socket | None:
            try:
                return bind(listen)
            except OSError as exc:
                problems.append(_bind_problem(key, listen, exc))
                return None

        if "http" in self.roles:
            self._http_sock = attempt("http.listen", self.settings.http.listen)
        else:
            own = self.settings.metrics.listen
            role = next((r for r in self.roles if r in own), None)
            if role is not None:
                self._metrics_sock = attempt(f"metrics.listen.{role}", own[role])
        if "smtp" in self.roles:
            for key, listens, into in (
                ("smtp.listen", self.settings.smtp.listen, self._smtp_socks),
                ("smtp.tls_listen", self.settings.smtp.tls_listen, self._smtps_socks),
            ):
                for listen in listens:
                    sock = attempt(key, listen)
                    if sock is not None:
                        into.append(sock)
        if problems:
            raise StartupError(problems)

    def _close_listeners(self) -> None:
        for sock in [self._http_sock, self._metrics_sock, *self._smtp_socks, *self._smtps_socks]:
            if sock is not None:
                sock.close()

    async def run(self) -> None:
        self.prepare()
        assert self._locks is not None
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.stop_event.set)
        self.store.open()
        self.store.start_writer()
        tasks: list[asyncio.Task[Any]] = []
        servers: list[Any] = []
        smtp: SmtpGateway | None = None
        try:
            if "relay" in self.roles:
                self.worker = DeliveryWorker(
                    store=self.store,
                    settings=self.settings,
                    clock=self.clock,
                    transport=make_transport(self.settings, self.metrics),
                    bodies=MessageSigner(self.store),
                    verp_secret=self.settings.secret_key()
                    if self.settings.secret_key_file.exists()
                    else None,
                )
                self.worker.recover()
                tasks.append(asyncio.create_task(self.worker.run(), name="relay"))
                self.checker = DomainChecker(
                    self.store,
                    self.settings,
                    self.clock,
                    make_resolver(self.settings),
                    interval=self.settings.domains.recheck_interval,
                )
                self._checker_task = asyncio.create_task(self.checker.run(), name="domains")
                self.inbound = InboundProcessor(
                    self.store,
                    self.settings,
                    secret=self.settings.secret_key()
                    if self.settings.secret_key_file.exists()
                    else None,
                )
                tasks.append(asyncio.create_task(self.inbound.run(), name="inbound"))
            if "webhooks" in self.roles:
                self.dispatcher = WebhookDispatcher(
                    self.store, self.settings, self.clock, make_resolver(self.settings)
                )
                if self.worker is not None:
                    self.worker.on_record = self.dispatcher.wake
                self.dispatcher.recover()
                tasks.append(asyncio.create_task(self.dispatcher.run(), name="webhooks"))
            if "http" in self.roles:
                self.renderer = Renderer(workers=self.settings.http.render_workers)
                admission = Admission(
                    store=self.store,
                    settings=self.settings,
                    clock=self.clock,
                    renderer=self.renderer,
                )
                if self.worker is not None:
                    admission.on_commit = self.worker.wake
                extra_routes: list[Any] = []
                if self.settings.secret_key_file.exists():
                    self.recorder = HitRecorder(self._write_hits)
                    await self.recorder.start()
                    extra_routes = tracking_routes(
                        keys=[self.settings.secret_key()],
                        recorder=self.recorder,
                        clock=self.clock,
                        lifetime=self.settings.tracking.token_lifetime,
                    )
                if self.settings.dashboard.enabled:
                    extra_routes += dashboard_routes(
                        store=self.store,
                        settings=self.settings,
                        clock=self.clock,
                        renderer=self.renderer,
                    )
                api = HttpApi(
                    store=self.store,
                    admission=admission,
                    max_request_bytes=self.settings.http.max_request_bytes,
                    metrics=self.metrics,
                    sync_deliver=self._sync_deliver(),
                    extra_routes=extra_routes,
                    auth_throttle=FailedAuthThrottle(
                        self.clock,
                        AuthLimits(
                            failures=self.settings.http.auth_failure_limit,
                            window=self.settings.http.auth_failure_window,
                        ),
                    ),
                )
                assert self._http_sock is not None
                self.ready_info["http"] = await self._serve_http(
                    api.app(), self._http_sock, "http", tasks, servers
                )
                # the first read of the store's totals counts its whole history: not in a scrape
                tasks.append(
                    asyncio.create_task(
                        asyncio.to_thread(self.metrics.refresh), name="metrics-warmup"
                    )
                )
            elif self._metrics_sock is not None:
                self.ready_info["metrics"] = await self._serve_http(
                    metrics_app(self.metrics), self._metrics_sock, "metrics", tasks, servers
                )
            if "smtp" in self.roles:
                smtp_admission = Admission(
                    store=self.store, settings=self.settings, clock=self.clock
                )
                if self.worker is not None:
                    smtp_admission.on_commit = self.worker.wake
                smtp = SmtpGateway(
                    admission=smtp_admission, settings=self.settings, clock=self.clock
                )
                plain = [await smtp.start(sock) for sock in self._smtp_socks]
                implicit = [await smtp.start(sock, implicit_tls=True) for sock in self._smtps_socks]
                self.ready_info["smtp"] = addresses(plain)
                self.ready_info["smtps"] = addresses(implicit)
            started = self.clock.now()
            self._locks.write_ready(
                {**self.ready_info, "started": started, "heartbeat": started, "store_ok": True}
            )
            log.info("ready", extra=self.ready_info)
            self.notifier.ready(f"serving {', '.join(self.roles)}")
            tasks.append(
                asyncio.create_task(watchdog_loop(self.notifier, self._alive), name="watchdog")
            )
            tasks.append(asyncio.create_task(self._heartbeat(started), name="heartbeat"))
            await self.stop_event.wait()
            log.info("stopping")
            self.notifier.stopping("draining")
        finally:
            if smtp is not None:
                await smtp.stop(timeout=10)
            for server in servers:
                server.should_exit = True
            if self.worker is not None:
                await self.worker.stop()
            if self.inbound is not None:
                self.inbound.stop()
            if self.checker is not None:
                self.checker.stop()
                self._checker_task.cancel()  # a DNS check in progress is simply abandoned
            if self.recorder is not None:
                await self.recorder.stop()
            if self.dispatcher is not None:
                await self.dispatcher.stop()
            for t in tasks:
                if t.get_name() in ("watchdog", "heartbeat"):  # run until cancelled
                    t.cancel()
            if tasks:
                await asyncio.wait(tasks, timeout=30)
            for t in tasks:
                if not t.done():
                    t.cancel()
            if tasks:  # cancelled work gives its leases back through the writer: let it
                await asyncio.wait(tasks, timeout=5)
            if self._sync_worker is not None and self._sync_worker is not self.worker:
                with contextlib.suppress(Exception):  # QUIT its idle upstream sessions
                    await asyncio.wait_for(self._sync_worker.transport.aclose(), 10)
            if self.renderer is not None:  # after the HTTP server's in-flight requests
                await self.renderer.aclose()
            self.store.close()
            self._close_listeners()
            self._locks.release()
            self._locks = None

    async def _heartbeat(
        self, started: float, *, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    ) -> None:
        """Rewrite the ready files every ``HEARTBEAT_SECONDS`` with whether the store answered
        (``relaygate status`` reads them); runs until cancelled."""
        assert self._locks is not None
        loop = asyncio.get_running_loop()
        while True:
            await sleep(HEARTBEAT_SECONDS)
            if self._probed is not None and loop.time() - self._probed[0] < HEARTBEAT_SECONDS:
                store_ok = self._probed[1]  # the watchdog has just asked the store
            else:
                store_ok = bool(await self._probe())
            info = {**self.ready_info, "started": started, "heartbeat": self.clock.now()}
            try:
                await asyncio.to_thread(self._locks.write_ready, {**info, "store_ok": store_ok})
            except OSError:
                log.warning("could not write the heartbeat to run/")

    async def _probe(self) -> bool | None:
        """Whether the store committed a probe write; None when its writer did not answer within
        ``WATCHDOG_PROBE_SECONDS``. Kept for the heartbeat, which reuses a recent answer."""
        try:
            committed = await asyncio.wait_for(self.store.probe(), WATCHDOG_PROBE_SECONDS)
        except TimeoutError:
            self._probed = (asyncio.get_running_loop().time(), False)
            return None
        self._probed = (asyncio.get_running_loop().time(), committed)
        return committed

    async def _alive(self) -> bool:
        """The watchdog's check: the store's writer answers a probe — committed, or "busy" when
        another process holds the lock or the disk is full — within ``WATCHDOG_PROBE_SECONDS``.

        A busy store is not a wedged process: restarting cannot free another process's lock,
        and a restart loop would end in systemd's start limit with relaygate down. /readyz
        reports the busy store (503) instead.
        """
        committed = await self._probe()
        if committed is None:
            log.warning("store writer did not answer the watchdog probe")
            return False
        if not committed:
            log.warning("store busy or failing; the process is alive")
        return True

    async def _serve_http(
        self,
        app: Any,
        sock: socket.socket,
        name: str,
        tasks: list[asyncio.Task[Any]],
        servers: list[Any],
    ) -> str:
        """Run ``app`` under uvicorn on ``sock`` until shutdown; its address once it listens."""
        config = uvicorn.Config(
            app,
            lifespan="off",
            log_config=None,
            access_log=False,
            http=http_protocol(
                header_timeout=self.settings.http.header_timeout,
                idle_timeout=self.settings.http.idle_timeout,
                max_connections=self.settings.http.max_connections,
            ),
            timeout_keep_alive=self.settings.http.idle_timeout,  # type: ignore[arg-type]
            loop="none",
            timeout_graceful_shutdown=10,
            server_header=False,
            date_header=True,
        )
        server = _Uvicorn(config)
        servers.append(server)
        tasks.append(asyncio.create_task(server.serve(sockets=[sock]), name=name))
        while not server.started and not tasks[-1].done():
            await asyncio.sleep(0.01)
        return _addr(sock)

    def _sync_deliver(self) -> Callable[[str], Awaitable[list[Outcome]]] | None:
        """smarthost_sync: /v1/send hands the message to the upstream before it answers."""
        d = self.settings.delivery
        if d.mode != "smarthost" or not d.smarthost_sync:
            return None
        worker = self._sync_worker = self.worker or DeliveryWorker(
            store=self.store,
            settings=self.settings,
            clock=self.clock,
            transport=make_transport(self.settings, self.metrics),
            bodies=MessageSigner(self.store),
            verp_secret=self.settings.secret_key()
            if self.settings.secret_key_file.exists()
            else None,
        )
        return worker.deliver_now

    async def _write_hits(self, hits: Sequence[TrackingHit]) -> None:
        await self.store.tracking.record_hits(hits, classify_tracking_hit)
        if self.dispatcher is not None:
            self.dispatcher.wake()  # open/click events are webhook events
