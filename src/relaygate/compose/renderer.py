"""Rendering a stranger's template off the event loop, with a hard deadline.

The one entry point for rendering in a server process: ``await renderer.render(template,
variables)`` (``POST /v1/send``; the management API's preview calls the same), and ``await
renderer.check(template)`` to compile without rendering. Both run
:func:`relaygate.compose.templates.render` / ``compile_check`` in a worker process
(:mod:`relaygate.compose.renderworker`), so:

* the event loop never runs template code: ``/healthz``, SMTP and delivery go on whatever a
  template does;
* the deadline is hard: the worker checks its own (``RenderLimits.max_seconds`` per render, at
  every call, filter and loop iteration) and answers ``TemplateError``; a single call that
  outruns it (one expensive filter, a C routine) is ended by ``SIGKILL`` at the deadline plus
  ``grace``, and the answer is the same ``TemplateError`` naming the limit;
* a worker's memory is its own; when it dies under a render (killed from outside, out of
  memory) the render is tried once more on another worker, then answered "retry later" (503).

Why processes and not a thread with deadline checks: a thread cannot be stopped, so the
deadline would hold only if every operation a template can reach were bounded in time (every
filter, method, comparison and C routine, in every Jinja release), and its Python code would
still share the GIL with the event loop. bench/README.md ("Session 4") has the measured costs.

How the work is spread (the loop's cost per render is a buffered write and its share of one
read): renders are pipelined — a worker's pipe may hold up to ``PIPELINE`` requests, answered
in order — so under load one wake-up of a worker serves many renders. A render goes to the
first worker that is not *stuck* (its current render has run less than ``STUCK`` seconds), has
room, and is idle or busy with the same tenant's renders only; a new worker is started only
when none is (up to ``workers``), so a steady server with one busy tenant keeps one, and one
tenant's renders never queue behind another's while the pool can grow. One tenant (the account) has renders on at most ``per_tenant`` workers at a time,
so one key's slow templates cannot occupy every worker. A render that finds no place waits at
most ``queue_wait`` seconds, then ``RenderUnavailable`` (503, retry later). When a worker is
killed or dies, its current render is answered (limit, or retry later) and the renders queued
behind it go to another worker (rendering is pure: doing it again changes nothing).

A renderer serves one event loop at a time; used from a new loop after the old one closed (as
tests do), it keeps its idle workers and stops the others.

Trust: the worker's replies are parsed as plain bytes (never unpickled); a reply that breaks
the protocol counts as a crashed worker.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import json
import logging
import os
import pickle
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import relaygate
from relaygate.compose import renderworker
from relaygate.compose.templates import (
    DEFAULT_LIMITS,
    Rendered,
    RenderLimits,
    Template,
    TemplateError,
)
from relaygate.errors import RenderUnavailable

__all__ = ["Renderer", "default_renderer"]

log = logging.getLogger("relaygate.render")

#: Seconds past the render deadline before the worker is killed (its own check usually answers
#: first, with the line the template was on).
GRACE = 0.5
#: A worker whose current render has run this long gets no new work while another has room.
STUCK = 0.05
#: Requests queued in one worker's pipe at most.
PIPELINE = 64
#: Seconds a render may wait for a place (a worker starting, or every worker busy) before the
#: answer is "retry later": two slow renders' worth, and a worker's start on a loaded host.
QUEUE_WAIT = 5.0
#: Seconds a new worker may take to start (import Jinja2 and the catalog).
START_TIMEOUT = 30.0
_LENGTH = 4
_UNAVAILABLE = "the template renderer failed; retry later"


class _Killed(Exception):
    """The render passed its hard deadline (its worker was killed)."""


class _Died(Exception):
    """The worker exited or broke the protocol while this render was its current one."""


class _Job:
    __slots__ = ("fut", "request", "retried", "tenant", "wait_timer")

    def __init__(self, fut: asyncio.Future[bytes], request: bytes, tenant: object) -> None:
        self.fut = fut
        self.request = request
        self.tenant = tenant
        self.wait_timer: asyncio.TimerHandle | None = None
        self.retried = False  # its worker died under it once already


class _Worker:
    """One worker process, its pipes, and the renders sent to it (answered in order)."""

    def __init__(self, renderer: Renderer, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdin is not None and proc.stdout is not None
        self.renderer = renderer
        self.proc = proc
        self.wfd = proc.stdin.fileno()
        self.rfd = proc.stdout.fileno()
        os.set_blocking(self.wfd, False)
        os.set_blocking(self.rfd, False)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.inbuf = bytearray()
        self.outbuf = bytearray()
        self.flushing = False  # a flush is scheduled, or the loop watches wfd
        self.jobs: collections.deque[_Job] = collections.deque()
        self.tenants: collections.Counter[object] = collections.Counter()
        self.head_since = 0.0  # loop time the current render began (as far as we can tell)
        self.timer: asyncio.TimerHandle | None = None
        self.ready: asyncio.Future[bytes] | None = None
        self.dead = False

    # -- the pipes ------------------------------------------------------------------------
    def watch(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        loop.add_reader(self.rfd, self._readable)

    def unwatch(self) -> None:
        loop, self.loop = self.loop, None
        if loop is not None and not loop.is_closed():
            loop.remove_reader(self.rfd)
            loop.remove_writer(self.wfd)
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.flushing = False

    def send(self, job: _Job) -> None:
        assert self.loop is not None
        if not self.jobs:
            self.head_since = self.loop.time()
            self._arm()
        self.jobs.append(job)
        self.tenants[job.tenant] += 1
        self.outbuf += len(job.request).to_bytes(_LENGTH, "big")
        self.outbuf += job.request
        if not self.flushing:  # one write for every request of this loop step
            self.flushing = True
            self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        if self.dead or self.loop is None:
            return
        try:
            sent = os.write(self.wfd, self.outbuf) if self.outbuf else 0
        except BlockingIOError:
            sent = 0
        except OSError:
            self.renderer._lost(self, killed=False)
            return
        del self.outbuf[:sent]
        if self.outbuf:
            self.loop.add_writer(self.wfd, self._writable)
        else:
            self.flushing = False

    def _writable(self) -> None:
        assert self.loop is not None
        self.loop.remove_writer(self.wfd)
        self._flush()

    def _readable(self) -> None:
        try:
            data = os.read(self.rfd, 1 << 20)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.renderer._lost(self, killed=False)
            return
        self.inbuf += data
        while len(self.inbuf) >= _LENGTH:
            size = int.from_bytes(self.inbuf[:_LENGTH], "big")
            if len(self.inbuf) < _LENGTH + size:
                break
            body = bytes(self.inbuf[_LENGTH : _LENGTH + size])
            del self.inbuf[: _LENGTH + size]
            self._reply(body)
            if self.dead:
                return

    def _reply(self, body: bytes) -> None:
        if self.ready is not None:  # the first frame: READY
            ready, self.ready = self.ready, None
            if not ready.done():
                ready.set_result(body)
            return
        if not self.jobs:
            log.error("template render worker answered what it was not asked")
            self.renderer._lost(self, killed=False)
            return
        job = self.jobs.popleft()
        self._untenant(job)
        assert self.loop is not None
        self.head_since = self.loop.time()
        if not job.fut.done():  # (a cancelled render's answer is dropped)
            job.fut.set_result(body)
        self.renderer._place()

    def _untenant(self, job: _Job) -> None:
        self.tenants[job.tenant] -= 1
        if self.tenants[job.tenant] <= 0:
            del self.tenants[job.tenant]

    # -- the hard deadline ----------------------------------------------------------------
    def _arm(self) -> None:
        if self.timer is None and self.loop is not None:
            self.timer = self.loop.call_later(self.renderer.hard_seconds, self._check)

    def _check(self) -> None:
        self.timer = None
        if self.dead or not self.jobs or self.loop is None:
            return
        left = self.head_since + self.renderer.hard_seconds - self.loop.time()
        if left > 0:
            self.timer = self.loop.call_later(left, self._check)
            return
        log.warning(
            "template render passed its deadline; worker killed",
            extra={"pid": self.proc.pid, "seconds": self.renderer.hard_seconds},
        )
        self.renderer.killed += 1
        self.renderer._lost(self, killed=True)

    def stuck(self, now: float) -> bool:
        return bool(self.jobs) and now - self.head_since >= STUCK

    def close(self, *, kill: bool = False) -> None:
        """Stop watching; close the pipes (an idle worker exits); SIGKILL it when ``kill`` or
        busy (what it would answer belongs to nobody now)."""
        self.dead = True
        if kill or self.jobs:
            with contextlib.suppress(OSError):
                self.proc.send_signal(signal.SIGKILL)
        self.unwatch()
        for f in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError):
                if f is not None:
                    f.close()


def _spawn(limits: RenderLimits) -> subprocess.Popen[bytes]:
    src = str(Path(relaygate.__file__).resolve().parent.parent)  # this very relaygate
    path = os.environ.get("PYTHONPATH")
    env = {**os.environ, "PYTHONPATH": f"{src}{os.pathsep}{path}" if path else src}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "relaygate.compose.renderworker",
            json.dumps(dataclasses.asdict(limits)),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
    )


def _reap(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(subprocess.TimeoutExpired, OSError):
        proc.wait(timeout=10)


class Renderer:
    """Template rendering in worker processes (see the module docstring)."""

    def __init__(
        self,
        *,
        workers: int = 4,
        per_tenant: int | None = None,
        limits: RenderLimits = DEFAULT_LIMITS,
        queue_wait: float | None = None,
        grace: float = GRACE,
    ) -> None:
        if workers < 1:
            raise ValueError("a renderer needs at least one worker")
        self.workers = workers
        self.per_tenant = per_tenant or max(1, workers // 2)
        self.limits = limits
        self.queue_wait = QUEUE_WAIT if queue_wait is None else queue_wait
        self.hard_seconds = limits.max_seconds + grace
        self._loop: asyncio.AbstractEventLoop | None = None
        self._live: list[_Worker] = []  # started, in the order they were
        self._starting = 0
        self._pending: collections.deque[_Job] = collections.deque()
        self.started = 0
        self.killed = 0

    # -- the entry points -------------------------------------------------------------------
    async def render(
        self, template: Template, variables: Mapping[str, Any], *, tenant: object = None
    ) -> Rendered:
        """``templates.render`` in a worker. Raises TemplateError (the client's fault, with the
        limit named when the deadline passed) or RenderUnavailable (retry later)."""
        job = ("render", template.slug, template.subject, template.html, template.text, variables)
        reply = await self._run(job, tenant)
        if isinstance(reply, Rendered):
            return reply
        raise reply

    async def check(self, template: Template, *, tenant: object = None) -> None:
        """``templates.compile_check`` in a worker (a stranger's source can be slow to compile)."""
        job: tuple[Any, ...] = (
            "check",
            template.slug,
            template.subject,
            template.html,
            template.text,
            {},
        )
        reply = await self._run(job, tenant)
        if isinstance(reply, TemplateError):
            raise reply

    async def _run(self, job: tuple[Any, ...], tenant: object) -> Rendered | TemplateError:
        try:
            request = pickle.dumps(job, protocol=pickle.HIGHEST_PROTOCOL)
        except RecursionError:
            raise TemplateError("variables are nested too deeply") from None
        loop = self._bind()
        work = _Job(loop.create_future(), request, tenant)
        self._pending.append(work)
        self._place()
        if not work.fut.done() and work in self._pending:
            work.wait_timer = loop.call_later(self.queue_wait, self._waited_too_long, work)
        try:
            body = await work.fut
        except _Killed:
            raise TemplateError(
                f"limit exceeded: rendering took longer than {self.limits.max_seconds:g} s"
            ) from None
        except _Died:
            raise RenderUnavailable(_UNAVAILABLE) from None
        finally:
            if work.wait_timer is not None:
                work.wait_timer.cancel()
        try:
            reply = renderworker.decode_reply(body)
        except ValueError:
            log.error("template render worker sent a reply that breaks the protocol")
            raise RenderUnavailable(_UNAVAILABLE) from None
        if reply is None:
            raise RenderUnavailable(_UNAVAILABLE)
        return reply

    def _waited_too_long(self, job: _Job) -> None:
        job.wait_timer = None
        if job in self._pending:
            self._pending.remove(job)
            if not job.fut.done():
                job.fut.set_exception(RenderUnavailable("template rendering is busy; retry later"))

    # -- placing renders on workers -----------------------------------------------------------
    def _bind(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            if self._loop is not None and not self._loop.is_closed():
                raise RuntimeError("a Renderer serves one event loop at a time")
            self._loop = loop
            self._pending.clear()
            for worker in list(self._live):
                if worker.jobs or worker.dead:  # their answers belong to the closed loop
                    self._live.remove(worker)
                    worker.close()
                    loop.run_in_executor(None, _reap, worker.proc)
                else:
                    worker.unwatch()
                    worker.watch(loop)
            self._starting = 0
        return loop

    def _place(self) -> None:
        """Hand pending renders to workers, in order, as the rules allow; start a worker when
        a render has nowhere to go and the pool may grow."""
        if not self._pending or self._loop is None:
            return
        now = self._loop.time()
        while self._pending:
            job = self._pending[0]
            if job.fut.done():  # cancelled, or gave up waiting
                self._pending.popleft()
                continue
            worker = self._choose(job.tenant, now)
            if worker is None:
                if not self._starting and len(self._live) < self.workers:  # one at a time
                    self._starting += 1
                    self._loop.create_task(self._start())
                return
            self._pending.popleft()
            if job.wait_timer is not None:
                job.wait_timer.cancel()
                job.wait_timer = None
            worker.send(job)

    def _choose(self, tenant: object, now: float) -> _Worker | None:
        """Where a render of ``tenant`` goes: a free-running worker with room that is idle or
        busy with this tenant's renders only; else, when the pool can grow, nowhere yet (a new
        worker); else any free-running one; else the least loaded stuck one."""
        spread = 0 if tenant is None else sum(1 for w in self._live if tenant in w.tenants)
        mixed = stuck = None
        for worker in self._live:
            if worker.dead or len(worker.jobs) >= PIPELINE:
                continue
            if tenant is not None and spread >= self.per_tenant and tenant not in worker.tenants:
                continue
            if worker.stuck(now):
                if stuck is None or len(worker.jobs) < len(stuck.jobs):
                    stuck = worker
            elif not worker.tenants or (len(worker.tenants) == 1 and tenant in worker.tenants):
                return worker
            elif mixed is None:
                mixed = worker
        if len(self._live) < self.workers:
            return None
        return mixed or stuck

    async def _start(self) -> None:
        loop = asyncio.get_running_loop()
        started = time.monotonic()
        worker: _Worker | None = None
        try:
            proc = await loop.run_in_executor(None, _spawn, self.limits)
            worker = _Worker(self, proc)
            worker.ready = loop.create_future()
            worker.watch(loop)
            ready = await asyncio.wait_for(worker.ready, START_TIMEOUT)
            if ready != renderworker.READY:
                raise _Died()
        except (OSError, TimeoutError, _Died):
            log.error("template render worker did not start")
            if worker is not None:
                worker.close(kill=True)
                loop.run_in_executor(None, _reap, worker.proc)
            return
        finally:
            if self._loop is loop:
                self._starting -= 1
        if self._loop is not loop:  # the renderer moved on to another loop meanwhile
            worker.close()
            return
        self._live.append(worker)
        self.started += 1
        log.info(
            "template render worker started",
            extra={"pid": proc.pid, "seconds": round(time.monotonic() - started, 3)},
        )
        self._place()

    def _lost(self, worker: _Worker, *, killed: bool) -> None:
        """A worker is gone (killed at the deadline, or it died): its current render is
        answered, the ones queued behind it go back to the front of the line."""
        if worker.dead:
            return
        jobs = list(worker.jobs)
        worker.jobs.clear()
        worker.close(kill=True)
        if worker in self._live:
            self._live.remove(worker)
        if self._loop is not None and not self._loop.is_closed():
            self._loop.run_in_executor(None, _reap, worker.proc)
        if not killed:
            log.error("template render worker died", extra={"pid": worker.proc.pid})
        if jobs:
            head, rest = jobs[0], jobs[1:]
            if killed or head.retried:
                if not head.fut.done():
                    head.fut.set_exception(_Killed() if killed else _Died())
            else:  # it may have died of something else (killed from outside): once more
                head.retried = True
                rest.insert(0, head)
            self._pending.extendleft(reversed(rest))
            for job in rest:
                if job.wait_timer is None and self._loop is not None:
                    job.wait_timer = self._loop.call_later(
                        self.queue_wait, self._waited_too_long, job
                    )
        self._place()

    async def aclose(self) -> None:
        """Stop every worker (their input closes; they exit)."""
        workers, self._live = self._live, []
        for worker in workers:
            worker.close()
        pending, self._pending = self._pending, collections.deque()
        for job in pending:
            if not job.fut.done():
                job.fut.set_exception(_Died())
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(loop.run_in_executor(None, _reap, w.proc) for w in workers))


_DEFAULT: Renderer | None = None


def default_renderer() -> Renderer:
    """A process-wide renderer with the default limits (for code that was given none)."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = Renderer()
    return _DEFAULT
