"""POST /v1/send accept rate and latency, single relaygate process (http role), capture mode.

    .venv/bin/python bench/send.py [--seconds 10] [--concurrency 32] [--rate 300]

Prints one JSON line: closed-loop throughput for a 2 KB inline message and for a template send,
and open-loop latency at a fixed rate. Every 200 is durable (committed with synchronous=FULL).
Load generator: bench/_load.py (raw asyncio sockets, keep-alive) in a separate process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _load import build_request, run_load

from relaygate.testing.process import RelaygateProcess


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=8)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--rate", type=float, default=300)
    ap.add_argument("--roles", default="http")
    args = ap.parse_args()
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
        host, _, port = rg.info["http"].rpartition(":")
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
            "machine": f"{platform.machine()} {os.cpu_count()} cores",
            "load_generator": "bench/_load.py",
        }
        try:
            for name, payload in (("inline_2kb", inline), ("template", template)):
                req = build_request(host, int(port), "/v1/send", payload, headers)
                results[name] = asyncio.run(
                    run_load(
                        host,
                        int(port),
                        lambda _i, r=req: r,
                        seconds=args.seconds,
                        concurrency=args.concurrency,
                    )
                )
            req = build_request(host, int(port), "/v1/send", inline, headers)
            results[f"inline_at_{int(args.rate)}_rps"] = asyncio.run(
                run_load(
                    host,
                    int(port),
                    lambda _i: req,
                    seconds=args.seconds,
                    concurrency=8,
                    rate=args.rate,
                )
            )
        finally:
            rg.terminate()
        print(json.dumps(results))


if __name__ == "__main__":
    main()
