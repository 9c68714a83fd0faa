"""POST /v1/send accept rate and latency, single relaygate process (http role), capture mode.

    .venv/bin/python bench/send.py [--seconds 8] [--concurrency 32] [--rate 300] [--python-client]

Prints one JSON line: closed-loop throughput for a 2 KB inline message and for a template send,
and open-loop latency at a fixed rate. Every 200 is durable (committed with synchronous=FULL).
Load generator: wrk (C) for the closed loop when installed (so the generator takes little of
the two cores), bench/_load.py (raw asyncio sockets, keep-alive) for the fixed-rate run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _load import build_request, run_load, run_wrk

from relaygate.testing.process import RelaygateProcess


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=8)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--rate", type=float, default=300)
    ap.add_argument("--roles", default="http")
    ap.add_argument(
        "--python-client", action="store_true", help="use bench/_load.py even when wrk is installed"
    )
    ap.add_argument(
        "--rate-only",
        action="store_true",
        help="only the fixed-rate latency run, on a fresh store (no closed-loop runs before it)",
    )
    args = ap.parse_args()
    use_wrk = shutil.which("wrk") is not None and not args.python_client
    with tempfile.TemporaryDirectory() as tmp:
        rg = RelaygateProcess(
            Path(tmp), roles=args.roles.split(","), top_extra={"log_level": "warning"}
        )
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
        rg.cli("identity", "add", "--account", "1", "example.com", "--verified")
        secret = rg.cli("key", "create", "--account", "1")["key"]
        rg.start()
        host, _, port_text = rg.info["http"].rpartition(":")
        port = int(port_text)
        text = ("Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 18)[:1000]
        inline = json.dumps(
            {
                "from_email": "bench@example.com",
                "to": ["r@dest.test"],
                "subject": "Benchmark message",
                "html": f"<p>{text}</p>",
                "text": text,
            }
        ).encode()
        template = json.dumps(
            {
                "from_email": "bench@example.com",
                "to": ["r@dest.test"],
                "template": "welcome",
                "variables": {"user": {"first_name": "Alex"}},
            }
        ).encode()
        headers = {"X-API-Key": secret}
        results: dict[str, object] = {
            "machine": f"{platform.machine()} {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}",
            "load_generator": "wrk (closed loop), bench/_load.py (fixed rate)"
            if use_wrk
            else "bench/_load.py",
        }
        try:
            closed = () if args.rate_only else (("inline_2kb", inline), ("template", template))
            for name, payload in closed:
                if use_wrk:
                    results[name] = run_wrk(
                        f"http://{host}:{port}/v1/send",
                        payload,
                        headers,
                        seconds=args.seconds,
                        connections=args.concurrency,
                    )
                else:
                    req = build_request(host, port, "/v1/send", payload, headers)
                    results[name] = asyncio.run(
                        run_load(
                            host,
                            port,
                            lambda _i, r=req: r,
                            seconds=args.seconds,
                            concurrency=args.concurrency,
                        )
                    )
            req = build_request(host, port, "/v1/send", inline, headers)
            results[f"inline_at_{int(args.rate)}_rps"] = asyncio.run(
                run_load(
                    host, port, lambda _i: req, seconds=args.seconds, concurrency=8, rate=args.rate
                )
            )
        finally:
            rg.terminate()
        print(json.dumps(results))


if __name__ == "__main__":
    main()
