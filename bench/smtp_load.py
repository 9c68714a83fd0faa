"""SMTP load generator (fallback for bench/smtp.sh when Postfix's smtp-source is absent).

Like ``smtp-source -s SESSIONS -m MESSAGES -l BYTES``: SESSIONS concurrent workers, one
connection per message, each message BYTES of payload. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import aiosmtplib


async def run(host: str, port: int, sessions: int, messages: int, size: int) -> dict[str, float]:
    payload = b"From: <app@example.com>\r\nTo: <r@dest.test>\r\nSubject: load\r\n\r\n" + (
        b"x" * 78 + b"\r\n"
    ) * (size // 80)
    remaining = messages
    ok = 0
    failed = 0

    async def worker() -> None:
        nonlocal remaining, ok, failed
        while remaining > 0:
            remaining -= 1
            try:
                async with aiosmtplib.SMTP(
                    hostname=host, port=port, local_hostname="client.test", start_tls=False
                ) as client:
                    await client.sendmail("app@example.com", ["r@dest.test"], payload)
                ok += 1
            except aiosmtplib.SMTPException:
                failed += 1

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(sessions)))
    seconds = time.perf_counter() - start
    return {
        "msgs": ok,
        "failed": failed,
        "seconds": round(seconds, 3),
        "msg_per_s": round(ok / seconds, 1),
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--sessions", type=int, default=20)
    p.add_argument("--messages", type=int, default=20000)
    p.add_argument("--bytes", type=int, default=1024)
    a = p.parse_args()
    result = asyncio.run(run(a.host, a.port, a.sessions, a.messages, a.bytes))
    print(json.dumps({"bench": "smtp_load", **result}))


if __name__ == "__main__":
    main()
