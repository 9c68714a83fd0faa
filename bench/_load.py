"""A small HTTP/1.1 keep-alive load generator on raw asyncio sockets (shared by the benches).

Closed loop (``concurrency`` connections, each sending the next request when the answer came)
or open loop (``rate`` requests per second spread over the connections). Latency is measured
per request from write to the end of the body.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable


async def _request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: bytes) -> int:
    writer.write(raw)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    if length:
        await reader.readexactly(length)
    return status


def build_request(host: str, port: int, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: {host}:{port}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
    ]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def run_load(
    host: str,
    port: int,
    make_request: Callable[[int], bytes],
    *,
    seconds: float,
    concurrency: int,
    rate: float | None = None,
    warmup: float = 1.0,
) -> dict[str, float]:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    counter = 0
    start = time.perf_counter()
    measure_from = start + warmup
    deadline = measure_from + seconds

    async def conn_loop(index: int) -> None:
        nonlocal counter
        reader, writer = await asyncio.open_connection(host, port)
        interval = concurrency / rate if rate else 0.0
        # Stagger the connections so the fixed rate is an even stream, not bursts of `concurrency`.
        next_at = time.perf_counter() + index * interval / concurrency
        try:
            while True:
                now = time.perf_counter()
                if now >= deadline:
                    return
                if rate:
                    if now < next_at:
                        await asyncio.sleep(next_at - now)
                    next_at += interval
                counter += 1
                raw = make_request(counter)
                t0 = time.perf_counter()
                status = await _request(reader, writer, raw)
                t1 = time.perf_counter()
                if t0 >= measure_from:
                    latencies.append(t1 - t0)
                    statuses[status] = statuses.get(status, 0) + 1
        finally:
            writer.close()

    await asyncio.gather(*(conn_loop(i) for i in range(concurrency)))
    ok = statuses.get(200, 0)
    lat = sorted(latencies)

    def pct(p: float) -> float:
        return round(lat[min(len(lat) - 1, int(p * len(lat)))] * 1000, 2) if lat else 0.0

    return {
        "requests": len(lat),
        "ok": ok,
        "non_2xx": len(lat) - ok,
        "req_per_s": round(ok / seconds, 1),
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "max_ms": round(lat[-1] * 1000, 2) if lat else 0.0,
        "mean_ms": round(statistics.fmean(lat) * 1000, 2) if lat else 0.0,
    }


def run_wrk(
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    seconds: float,
    connections: int,
    threads: int = 1,
) -> dict[str, object]:
    """Closed-loop load with wrk (C, so the load generator takes little of the 2 cores)."""
    import re
    import shutil
    import subprocess
    import tempfile

    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk is not installed (Debian: apt-get install wrk)")
    lines = [
        'wrk.method = "POST"',
        f"wrk.body = {_lua(body.decode())}",
        'wrk.headers["Content-Type"] = "application/json"',
    ]
    lines += [f"wrk.headers[{_lua(k)}] = {_lua(v)}" for k, v in headers.items()]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write("\n".join(lines) + "\n")
        script = f.name
    proc = subprocess.run(
        [
            wrk,
            f"-t{threads}",
            f"-c{connections}",
            f"-d{int(seconds)}s",
            "--latency",
            "-s",
            script,
            url,
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
    )
    out = proc.stdout

    def ms(label: str) -> float:
        m = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not m:
            return 0.0
        value, unit = float(m.group(1)), m.group(2)
        return round(value / 1000 if unit == "us" else value * 1000 if unit == "s" else value, 2)

    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    requests = int(total.group(1)) if total else 0
    bad = int(non2xx.group(1)) if non2xx else 0
    return {
        "requests": requests,
        "ok": requests - bad,
        "non_2xx": bad,
        "req_per_s": round(float(rps.group(1)) * (requests - bad) / max(1, requests), 1)
        if rps
        else 0.0,
        "p50_ms": ms("50"),
        "p99_ms": ms("99"),
        "load_generator": "wrk",
    }


def _lua(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
