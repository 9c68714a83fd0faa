"""CPU per template send: the ``welcome`` template rendered, and the admission path around it.

    .venv/bin/python bench/render_template.py [--seconds 2]

Prints one JSON line of microseconds (CPU time of this process, one thread busy) per operation:

* ``render_welcome_us``: ``templates.render`` of the system ``welcome`` template with
  bench/send.py's variables, in this process;
* ``renderer_parent_us``: this process's CPU per ``await Renderer.render`` of the same, one at a
  time (the event loop's share of rendering in a worker process; the worker's CPU is not in it);
* ``admission_template_us`` / ``admission_inline_us``: ``Admission.send`` for bench/send.py's
  template and 2 KB inline bodies with the store's commit (``Store.admit``) stubbed out, so
  it is the validate + render + compose work of a request (store reads included; the render
  in a worker process, so its CPU is not counted);
* ``admit_commit_us``: ``Store._admit`` (the SQL of the admission transaction) run in
  batches of 32 in one transaction, without fsync (group commit amortizes that).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from relaygate.clock import SystemClock
from relaygate.compose.renderer import Renderer
from relaygate.compose.templates import render, system_catalog
from relaygate.gateway.admission import Admission
from relaygate.policy import Limits
from relaygate.settings import from_mapping
from relaygate.store.ids import new_message_id
from relaygate.store.models import NewMessage, NewRecipient
from relaygate.store.sqlite import SqliteStore as Store

VARIABLES = {"user": {"first_name": "Alex"}}
TEXT = ("Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 18)[:1000]
INLINE = {
    "from_email": "bench@example.com",
    "to": ["r@dest.test"],
    "subject": "Benchmark message",
    "html": f"<p>{TEXT}</p>",
    "text": TEXT,
}
TEMPLATE = {
    "from_email": "bench@example.com",
    "to": ["r@dest.test"],
    "template": "welcome",
    "variables": VARIABLES,
}


def cpu_us(fn: Callable[[], object], seconds: float) -> float:
    """Median over 5 rounds of CPU microseconds per call."""
    fn()
    rounds = []
    for _ in range(5):
        count = 0
        start = time.process_time()
        while (elapsed := time.process_time() - start) < seconds / 5:
            for _ in range(20):
                fn()
            count += 20
        rounds.append(elapsed / count * 1e6)
    return round(sorted(rounds)[2], 1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=2.0)
    args = ap.parse_args()
    welcome = system_catalog()["welcome"]
    result: dict[str, Any] = {"bench": "render_template"}
    result["render_welcome_us"] = cpu_us(lambda: render(welcome, VARIABLES), args.seconds)
    renderer = Renderer(workers=1)
    pool_loop = asyncio.new_event_loop()
    result["renderer_parent_us"] = cpu_us(
        lambda: pool_loop.run_until_complete(renderer.render(welcome, VARIABLES)), args.seconds
    )
    pool_loop.run_until_complete(renderer.aclose())
    pool_loop.close()

    with tempfile.TemporaryDirectory() as tmp:
        settings = from_mapping(
            {
                "state_dir": str(Path(tmp) / "state"),
                "hostname": "relay.bench",
                "delivery": {"mode": "capture", "capture_dir": str(Path(tmp) / "capture")},
            },
            path=Path(tmp) / "relaygate.toml",
        )
        store = Store(Path(tmp) / "state" / "relaygate.sqlite3", clock=SystemClock()).open()
        account = store.accounts.create(
            "bench", plan="paid", daily_quota=100_000_000, rate_limit=1_000_000
        )
        store.identities.add(account.id, "example.com", verified=True)
        key, _secret = store.keys.create(account.id, scopes=["email:send"])
        admission = Admission(store=store, settings=settings, clock=SystemClock())
        limits = Limits(rate_limit=1, rate_remaining=1, rate_reset=1, quota=1, quota_remaining=1)

        async def no_commit(message: NewMessage, *, limits_: bool = True) -> Limits:
            return limits

        store.admission.admit = no_commit  # type: ignore[method-assign,assignment]
        loop = asyncio.new_event_loop()
        for name, payload in (("template", TEMPLATE), ("inline", INLINE)):
            result[f"admission_{name}_us"] = cpu_us(
                lambda p=payload: loop.run_until_complete(  # type: ignore[misc]
                    admission.send(key, account, json.loads(json.dumps(p)))
                ),
                args.seconds,
            )
        loop.close()

        conn = store.core.conn()
        conn.execute("PRAGMA synchronous = OFF")
        body = b"x" * 2300

        def batch() -> None:
            conn.execute("BEGIN")
            for _ in range(32):
                msg_id = new_message_id()
                store.admission.admit_one(
                    conn,
                    NewMessage(
                        id=msg_id,
                        account_id=account.id,
                        channel="http",
                        from_addr="bench@example.com",
                        sender_domain="example.com",
                        subject="Benchmark message",
                        header_message_id=f"<{msg_id}@relay.bench>",
                        tags=(),
                        body=body,
                        recipients=(NewRecipient(address="r@dest.test", kind="to"),),
                        check_suppressions=True,
                    ),
                    time.time(),
                    True,
                )
            conn.execute("COMMIT")

        result["admit_commit_us"] = round(cpu_us(batch, args.seconds) / 32, 1)
        store.close()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
