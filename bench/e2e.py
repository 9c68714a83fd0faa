"""End to end: POST /v1/send → spool → DKIM (RSA-2048) → MX delivery to a discard SMTP sink.

    .venv/bin/python bench/e2e.py [--messages 20000] [--concurrency 32] [--variants sign,nosign]
    .venv/bin/python bench/e2e.py --queued 100000 [--rcpts-per-message 10]

One ``relaygate serve`` (all roles, delivery mode ``mx``) on loopback; ``[delivery] mx_port``
points at a fast aiosmtpd sink in a separate process (answers 250 to everything, keeps counters
only) and ``[dns] nameservers`` at relaygate.testing.dns.DNSServer in this process, which serves
MX/A for the destination and the sending domain's verification and DKIM records. Messages are
~1 KB of text, one recipient each, sent over keep-alive HTTP by the bench/_load.py request code.

Reported per variant (``sign``: a verified domain with an active RSA-2048 key; ``nosign``: a
verified address identity, no key, so nothing is signed): accept rate (first request → last
200), sustained end-to-end rate (first request → last message seen by the sink), how many the
sink saw DKIM-signed, and relaygate's peak RSS (VmHWM from /proc). ``--queued N`` admits N
recipients with only the http role running, then starts the relay role alone and reports its
peak RSS and delivery rate while it works through the backlog. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _load import _request, build_request

from relaygate.testing.dns import DNSServer
from relaygate.testing.process import RelaygateProcess

DEST = "dest.bench"
SINK_SCRIPT = r"""
import asyncio, json, os, sys, time
from aiosmtpd.smtp import SMTP

stats_path = sys.argv[1]
stats = {"messages": 0, "recipients": 0, "signed": 0, "first_at": None, "last_at": None}

class Handler:
    async def handle_RCPT(self, server, session, envelope, address, options):
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        now = time.time()
        data = envelope.original_content or b""
        stats["messages"] += 1
        stats["recipients"] += len(envelope.rcpt_tos)
        if data.startswith(b"DKIM-Signature:") or b"\nDKIM-Signature:" in data[:8192]:
            stats["signed"] += 1
        if stats["first_at"] is None:
            stats["first_at"] = now
        stats["last_at"] = now
        return "250 2.0.0 OK"

async def dump():
    while True:
        tmp = stats_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(stats, f)
        os.replace(tmp, stats_path)
        await asyncio.sleep(0.1)

async def main():
    loop = asyncio.get_running_loop()
    handler = Handler()
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="sink.bench", ident="bench sink", loop=loop,
                     auth_exclude_mechanism=["LOGIN", "PLAIN"], data_size_limit=0),
        host="127.0.0.1", port=0, backlog=1024)
    print(server.sockets[0].getsockname()[1], flush=True)
    await dump()

try:
    import uvloop
    uvloop.run(main())
except ImportError:
    asyncio.run(main())
"""


@contextlib.contextmanager
def sink_process(tmp: Path) -> Iterator[tuple[int, Path]]:
    stats = tmp / "sink-stats.json"
    proc = subprocess.Popen(
        [sys.executable, "-c", SINK_SCRIPT, str(stats)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        yield port, stats
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def sink_stats(path: Path) -> dict[str, Any]:
    for _ in range(20):
        try:
            data: dict[str, Any] = json.loads(path.read_text())
            return data
        except (OSError, ValueError):
            time.sleep(0.02)
    return {"messages": 0, "recipients": 0, "signed": 0, "first_at": None, "last_at": None}


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS / VmHWM of ``pid`` in MB."""
    out: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0]) // 1024
    return out


def loadavg() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


async def send_n(
    host: str, port: int, requests: list[bytes], concurrency: int
) -> tuple[float, float, dict[int, int]]:
    """Send every request over ``concurrency`` keep-alive connections; (start, last 200, statuses)."""
    statuses: dict[int, int] = {}
    next_index = 0
    last_ok = 0.0

    async def conn_loop() -> None:
        nonlocal next_index, last_ok
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while next_index < len(requests):
                raw = requests[next_index]
                next_index += 1
                status = await _request(reader, writer, raw)
                statuses[status] = statuses.get(status, 0) + 1
                if status == 200:
                    last_ok = time.time()
        finally:
            writer.close()

    start = time.time()
    await asyncio.gather(*(conn_loop() for _ in range(concurrency)))
    return start, last_ok, statuses


def setup(rg: RelaygateProcess, dns: DNSServer) -> dict[str, str]:
    """An account with a signing domain (published in DNS) and an unsigned address identity."""
    rg.init()
    rg.cli(
        "account",
        "create",
        "bench",
        "--plan",
        "paid",
        "--daily-quota",
        "100000000",
        "--rate-limit",
        "1000000",
    )
    added = rg.cli("identity", "add", "--account", "1", "bench.test", "--verified")
    assert any(k["state"] == "active" and k["algorithm"] == "rsa" for k in added["keys"])
    for record in added["records"]:
        if record["required"]:
            dns.set(record["name"], record["type"], [record["strings"]])
    rg.cli("identity", "add", "--account", "1", "bench@nosign.test", "--verified")
    secret: str = rg.cli("key", "create", "--account", "1")["key"]
    return {"sign": "bench@bench.test", "nosign": "bench@nosign.test", "key": secret}


def payloads(
    host: str, port: int, sender: str, key: str, count: int, rcpts: int, offset: int = 0
) -> list[bytes]:
    text = ("Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 18)[:1000]
    out = []
    for i in range(count):
        body = json.dumps(
            {
                "from_email": sender,
                "to": [f"r{offset + i}.{j}@{DEST}" for j in range(rcpts)],
                "subject": f"Benchmark message {i}",
                "text": text,
            }
        ).encode()
        out.append(build_request(host, port, "/v1/send", body, {"X-API-Key": key}))
    return out


def wait_delivered(
    stats_path: Path, want: int, pid: int, timeout: float
) -> tuple[dict[str, Any], int]:
    deadline = time.monotonic() + timeout
    peak_rss = 0
    last_count, last_change = -1, time.monotonic()
    while time.monotonic() < deadline:
        stats = sink_stats(stats_path)
        peak_rss = max(peak_rss, proc_status(pid).get("VmRSS", 0))
        if stats["recipients"] >= want:
            return stats, peak_rss
        if stats["recipients"] != last_count:
            last_count, last_change = stats["recipients"], time.monotonic()
        elif time.monotonic() - last_change > 60:
            break  # no progress for a minute
        time.sleep(0.2)
    return sink_stats(stats_path), peak_rss


def run_variant(args: argparse.Namespace, variant: str) -> dict[str, Any]:
    with (
        tempfile.TemporaryDirectory(prefix="rg-e2e-") as tmp_name,
        DNSServer({DEST: {"MX": [(10, f"mx.{DEST}")]}, f"mx.{DEST}": {"A": ["127.0.0.1"]}}) as dns,
        sink_process(Path(tmp_name)) as (sink_port, stats_path),
    ):
        tmp = Path(tmp_name)
        rg = RelaygateProcess(
            tmp,
            top_extra={"log_level": "warning"},
            delivery={"mode": "mx", "mx_port": sink_port},
            dns={"nameservers": [dns.nameserver], "timeout": 2},
        )
        ids = setup(rg, dns)
        # --split: the roles as processes on one store, so admission and delivery get a core each.
        relays: list[RelaygateProcess] = []
        if args.split:
            rg.roles = ["http", "smtp"]
            for i in range(args.relays):
                relay = RelaygateProcess(tmp, roles=["relay", "webhooks"] if i == 0 else ["relay"])
                relay.start()
                relays.append(relay)
        rg.start()
        assert rg.proc is not None
        pid = relays[0].proc.pid if relays and relays[0].proc is not None else rg.proc.pid
        host, _, port = rg.info["http"].rpartition(":")
        reqs = payloads(host, int(port), ids[variant], ids["key"], args.messages, 1)
        load_before = loadavg()
        try:
            start, last_ok, statuses = asyncio.run(send_n(host, int(port), reqs, args.concurrency))
            accepted = statuses.get(200, 0)
            stats, peak_sampled = wait_delivered(
                stats_path, accepted, pid, timeout=max(120.0, args.messages / 20)
            )
            mem = proc_status(pid)
        finally:
            rg.terminate()
            for relay in relays:
                relay.terminate()
        end = stats["last_at"] or time.time()
        return {
            "messages": args.messages,
            "accepted": accepted,
            "statuses": {str(k): v for k, v in statuses.items()},
            "accept_per_s": round(accepted / max(1e-9, last_ok - start), 1),
            "delivered": stats["recipients"],
            "signed": stats["signed"],
            "e2e_per_s": round(stats["recipients"] / max(1e-9, end - start), 1),
            "e2e_seconds": round(end - start, 2),
            "delivery_lag_s": round(end - last_ok, 2),
            "peak_rss_mb": max(mem.get("VmHWM", 0), peak_sampled),
            "processes": f"http+smtp | relay x{args.relays}" if args.split else "all roles in one",
            "loadavg_before": load_before,
            "loadavg_after": loadavg(),
        }


def run_queued(args: argparse.Namespace) -> dict[str, Any]:
    rcpts = args.rcpts_per_message
    n_messages = args.queued // rcpts
    with (
        tempfile.TemporaryDirectory(prefix="rg-e2e-") as tmp_name,
        DNSServer({DEST: {"MX": [(10, f"mx.{DEST}")]}, f"mx.{DEST}": {"A": ["127.0.0.1"]}}) as dns,
        sink_process(Path(tmp_name)) as (sink_port, stats_path),
    ):
        tmp = Path(tmp_name)
        rg = RelaygateProcess(
            tmp,
            roles=["http"],
            top_extra={"log_level": "warning"},
            delivery={"mode": "mx", "mx_port": sink_port},
            dns={"nameservers": [dns.nameserver], "timeout": 2},
        )
        ids = setup(rg, dns)
        rg.start()
        host, _, port = rg.info["http"].rpartition(":")
        reqs = payloads(host, int(port), ids["sign"], ids["key"], n_messages, rcpts)
        start, last_ok, statuses = asyncio.run(send_n(host, int(port), reqs, args.concurrency))
        http_mem = proc_status(rg.proc.pid if rg.proc else 0)
        rg.terminate()
        queued = statuses.get(200, 0) * rcpts
        rg.roles = ["relay"]
        rg.start()
        assert rg.proc is not None
        pid = rg.proc.pid
        rss_at_start = proc_status(pid).get("VmRSS", 0)
        relay_start = time.time()
        try:
            stats, peak_sampled = wait_delivered(
                stats_path, queued, pid, timeout=max(300.0, queued / 20)
            )
            mem = proc_status(pid)
        finally:
            rg.terminate()
        end = stats["last_at"] or time.time()
        return {
            "queued_recipients": queued,
            "messages": statuses.get(200, 0),
            "rcpts_per_message": rcpts,
            "admit_per_s": round(statuses.get(200, 0) / max(1e-9, last_ok - start), 1),
            "http_role_peak_rss_mb": http_mem.get("VmHWM", 0),
            "relay_rss_at_start_mb": rss_at_start,
            "relay_peak_rss_mb": max(mem.get("VmHWM", 0), peak_sampled),
            "delivered_recipients": stats["recipients"],
            "delivered_messages": stats["messages"],
            "signed": stats["signed"],
            "drain_seconds": round(end - relay_start, 1),
            "drain_rcpts_per_s": round(stats["recipients"] / max(1e-9, end - relay_start), 1),
            "loadavg_after": loadavg(),
        }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=20_000)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--variants", default="sign,nosign")
    ap.add_argument("--queued", type=int, default=0, help="backlog mode: recipients to queue")
    ap.add_argument("--rcpts-per-message", type=int, default=10)
    ap.add_argument("--split", action="store_true", help="run http and relay as separate processes")
    ap.add_argument("--relays", type=int, default=1, help="with --split: how many relay processes")
    args = ap.parse_args()
    results: dict[str, Any] = {
        "bench": "e2e",
        "machine": f"{platform.machine()} {os.cpu_count()} cores",
        "python": platform.python_version(),
    }
    if args.queued:
        results["queued"] = run_queued(args)
    else:
        for variant in args.variants.split(","):
            results[variant] = run_variant(args, variant)
        if "sign" in results and "nosign" in results:
            results["signing_cost"] = round(
                1 - results["sign"]["e2e_per_s"] / max(1e-9, results["nosign"]["e2e_per_s"]), 3
            )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
