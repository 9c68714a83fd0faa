"""compose.renderer: templates rendered in real worker processes.

Same answers as rendering in-process; a render that outruns its deadline in one call is killed
and answered with the limit; one tenant's renders cannot hold up another's; a worker killed
from outside costs nothing but a new worker (the render it had is done again elsewhere); an
abandoned render never answers the next one; the renderer works from one event loop after
another.

The deadline tests are wall-clock by nature (a worker is killed when real time runs out): they
use deadlines of a fraction of a second and a render that takes far longer (urlize over a
million characters, ~1 s on this host) so they do not depend on the machine's speed.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relaygate.compose.renderer import Renderer
from relaygate.compose.templates import (
    RenderLimits,
    Template,
    TemplateError,
    render,
    system_catalog,
)

#: urlize over a million characters: one call, well over a second
SLOW = Template(slug="slow", subject="s", html="", text="{{ (v|urlize)|length }}")
SLOW_VARS = {"v": "a " * 500_000}
#: many calls of ~0.1 s each: the worker's own deadline check answers
LONG = Template(
    slug="long",
    subject="s",
    html="",
    text="{% for i in range(1000) %}{{ (v|urlize)|length }}{% endfor %}",
)
LONG_VARS = {"v": "a " * 49_999}
HELLO = Template(slug="hello", subject="Hi {{ name }}", html="", text="Hello {{ name }}")


@pytest.fixture
async def renderer() -> AsyncIterator[Renderer]:
    r = Renderer(workers=2)
    yield r
    await r.aclose()


async def test_renders_what_the_in_process_renderer_renders(renderer: Renderer) -> None:
    for slug, template in system_catalog().items():
        variables: dict[str, Any] = {
            "user": {"first_name": "Alex", "email": "a@x.test"},
            "action_url": "https://x.test/a",
            "code": "123456",
            "order": {"id": "42", "items": [], "total": "1.00"},
            "title": "T",
            "body": "B",
            "product_name": "P",
            "expires_minutes": 30,
        }
        try:
            expected: Any = render(template, variables)
        except TemplateError as exc:
            expected = exc.detail
        try:
            got: Any = await renderer.render(template, variables)
        except TemplateError as exc:
            got = exc.detail
        assert got == expected, slug


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    source=st.text(max_size=60),
    name=st.text(alphabet=st.characters(exclude_categories=()), max_size=20),
)
async def test_any_source_and_text_comes_back_as_in_process(
    renderer: Renderer, source: str, name: str
) -> None:
    template = Template(slug="t", subject="s", html="", text=source + "{{ name }}")
    try:
        expected: Any = render(template, {"name": name})
    except TemplateError as exc:
        expected = exc.detail
    try:
        got: Any = await renderer.render(template, {"name": name})
    except TemplateError as exc:
        got = exc.detail
    assert got == expected


async def test_one_call_past_the_deadline_is_killed_and_named() -> None:
    limits = RenderLimits(max_seconds=0.2, max_slow_filter_chars=10_000_000)
    r = Renderer(workers=1, limits=limits, grace=0.2)
    try:
        await r.render(HELLO, {"name": "A"})  # started (the deadline counts from the hand-over)
        started = time.monotonic()
        with pytest.raises(
            TemplateError, match=r"limit exceeded: rendering took longer than 0.2 s"
        ):
            await r.render(SLOW, SLOW_VARS)
        assert time.monotonic() - started < 0.2 + 1.0
        assert r.killed == 1
        assert (await r.render(HELLO, {"name": "B"})).text == "Hello B"  # a new worker
        assert r.started == 2
    finally:
        await r.aclose()


async def test_the_workers_own_deadline_answers_with_the_line() -> None:
    r = Renderer(workers=1, limits=RenderLimits(max_seconds=0.3), grace=5)
    try:
        with pytest.raises(TemplateError, match=r"text on line 1: limit exceeded: rendering took"):
            await r.render(LONG, LONG_VARS)
        assert r.killed == 0
    finally:
        await r.aclose()


async def test_one_tenant_holds_at_most_its_share_of_the_workers() -> None:
    r = Renderer(workers=2, per_tenant=1, limits=RenderLimits(max_seconds=1.0))
    try:
        await r.render(HELLO, {"name": "warm"})
        attacks = [
            asyncio.ensure_future(r.render(LONG, LONG_VARS, tenant="attacker")) for _ in range(3)
        ]
        await asyncio.sleep(0)  # the attacks are placed (on one worker: its share)
        # the victim gets a worker of its own and its answer while every attack still waits
        assert (await r.render(HELLO, {"name": "V"}, tenant="victim")).text == "Hello V"
        assert not any(a.done() for a in attacks)
        for attack in attacks:
            with pytest.raises(TemplateError, match="rendering took longer than 1 s"):
                await attack
    finally:
        await r.aclose()


async def _in_flight(
    renderer: Renderer, template: Template, variables: dict[str, Any]
) -> tuple[asyncio.Future[Any], int]:
    """A render handed to the (one, warm) worker, and that worker's pid."""
    await renderer.render(HELLO, {"name": "warm"})
    (worker,) = renderer._live
    task = asyncio.ensure_future(renderer.render(template, variables))
    await asyncio.sleep(0)  # the task hands its request to the worker...
    await asyncio.sleep(0)  # ...which writes it in the next loop step
    assert worker.jobs
    return task, worker.proc.pid


async def test_a_worker_killed_from_outside_while_idle_is_replaced() -> None:
    r = Renderer(workers=1)
    try:
        assert (await r.render(HELLO, {"name": "A"})).text == "Hello A"
        (worker,) = r._live
        os.kill(worker.proc.pid, signal.SIGKILL)
        worker.proc.wait()
        assert (await r.render(HELLO, {"name": "B"})).text == "Hello B"
        assert r.started == 2
    finally:
        await r.aclose()


async def test_a_render_whose_worker_dies_under_it_is_done_again_elsewhere() -> None:
    r = Renderer(workers=1)
    try:
        task, pid = await _in_flight(r, SLOW, {"v": "a " * 40_000})
        os.kill(pid, signal.SIGKILL)
        assert (await task).text == "80000"
        assert r.started == 2
    finally:
        await r.aclose()


async def test_an_abandoned_render_never_answers_the_next_one() -> None:
    r = Renderer(workers=1)
    try:
        task, _pid = await _in_flight(r, SLOW, {"v": "a " * 40_000})
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        for name in ("D", "E", "F"):
            assert (await r.render(HELLO, {"name": name})).text == f"Hello {name}"
    finally:
        await r.aclose()


def test_one_renderer_serves_one_event_loop_after_another() -> None:
    r = Renderer(workers=1)

    async def once(name: str) -> str:
        return (await r.render(HELLO, {"name": name})).subject

    assert asyncio.run(once("A")) == "Hi A"
    assert asyncio.run(once("B")) == "Hi B"
    assert r.started == 1
    asyncio.run(r.aclose())


async def test_check_compiles_in_a_worker(renderer: Renderer) -> None:
    await renderer.check(HELLO)
    with pytest.raises(TemplateError, match="text: syntax error on line 1"):
        await renderer.check(Template(slug="b", subject="s", html="", text="{% if %}"))
