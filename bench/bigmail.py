"""Message size against CPU: one ``relaygate serve`` (all roles, delivery mode ``mx``) relaying
messages of a given size, HTTP or SMTP in, DKIM RSA-2048 on or off, to Postfix's C ``smtp-sink``.

    .venv/bin/python bench/bigmail.py --way smtp --size 102400 [--messages 3000] [--nosign]
    .venv/bin/python bench/bigmail.py --way http --size 102400 [--seconds 8] [--profile out.svg]

SMTP in: ``smtp-source -s 20 -l SIZE -m N`` (trusted network → the bench account).
HTTP in: ``wrk`` with 16 connections for ``--seconds``, a ``text`` body of SIZE bytes in lines
of 72 characters (7bit). Out: ``[delivery] mx_port`` → ``smtp-sink`` through
``relaygate.testing.dns.DNSServer``.

Reported: accept rate, end-to-end rate (first message in → last message counted by the sink),
relaygate's CPU per message (utime + stime from /proc over the whole run, divided by the
messages delivered) and the sink's, peak RSS, load average. ``--profile FILE`` records the
relaygate process with py-spy (200 Hz; ``--native`` adds C frames) for the whole run. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from e2e import DEST, loadavg, proc_status, setup
from relaygate.testing.dns import DNSServer
from relaygate.testing.process import RelaygateProcess

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` (all its threads) in seconds."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def c_sink(tmp: Path) -> Iterator[tuple[int, Path, subprocess.Popen[bytes]]]:
    port = free_port()
    out = tmp / "sink.out"
    with out.open("wb") as f:
        proc = subprocess.Popen(
            ["smtp-sink", "-c", "-u", "nobody", f"127.0.0.1:{port}", "256"], stdout=f, stderr=f
        )
    try:
        for _ in range(100):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            time.sleep(0.05)
        yield port, out, proc
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def sink_count(out: Path) -> int:
    text = out.read_bytes().replace(b"\r", b"\n").split(b"\n")
    for line in reversed(text):
        if b"mesg=" in line:
            return int(line.split(b"mesg=")[1].split()[0])
    return 0


def http_body(sender: str, size: int) -> bytes:
    # 7bit text (a line ending in a space would make the part quoted-printable)
    line = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod."
    text = "\n".join([line] * max(1, size // 73))
    return json.dumps(
        {"from_email": sender, "to": [f"r@{DEST}"], "subject": "Benchmark message", "text": text}
    ).encode()


def run(args: argparse.Namespace) -> dict[str, Any]:
    with (
        tempfile.TemporaryDirectory(prefix="rg-bigmail-") as tmp_name,
        DNSServer({DEST: {"MX": [(10, f"mx.{DEST}")]}, f"mx.{DEST}": {"A": ["127.0.0.1"]}}) as dns,
        c_sink(Path(tmp_name)) as (sink_port, sink_out, sink_proc),
    ):
        tmp = Path(tmp_name)
        os.chmod(tmp, 0o755)
        rg = RelaygateProcess(
            tmp,
            top_extra={"log_level": "warning"},
            delivery={"mode": "mx", "mx_port": sink_port},
            dns={"nameservers": [dns.nameserver], "timeout": 2},
            smtp={"listen": ["127.0.0.1:0"], "trusted_networks": {"127.0.0.0/8": 1}},
        )
        ids = setup(rg, dns)
        sender = ids["nosign" if args.nosign else "sign"]
        rg.start()
        assert rg.proc is not None
        pid = rg.proc.pid
        spy = None
        if args.profile:
            spy = subprocess.Popen(
                [
                    str(Path(sys.executable).parent / "py-spy"),
                    "record",
                    *(["--native"] if args.native else []),
                    "-r",
                    "200",
                    "-o",
                    args.profile,
                    *(["-f", "raw"] if args.profile.endswith(".txt") else []),
                    "-p",
                    str(pid),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(1)
        load_before = loadavg()
        cpu0 = cpu_seconds(pid)
        sink_cpu0 = cpu_seconds(sink_proc.pid)
        start = time.time()
        try:
            if args.way == "smtp":
                subprocess.run(
                    [
                        "smtp-source",
                        "-s",
                        str(args.sessions),
                        "-l",
                        str(args.size),
                        "-m",
                        str(args.messages),
                        "-f",
                        sender,
                        "-t",
                        f"r@{DEST}",
                        "-M",
                        "client.bench",
                        rg.smtp_addresses[0][0] + ":" + str(rg.smtp_addresses[0][1]),
                    ],
                    check=True,
                )
                accepted = args.messages
            else:
                body = tmp / "body.json"
                body.write_bytes(http_body(sender, args.size))
                lua = tmp / "post.lua"
                lua.write_text(
                    'wrk.method = "POST"\n'
                    f"local f = io.open({json.dumps(str(body))}, 'rb')\n"
                    "wrk.body = f:read('*a')\nf:close()\n"
                    'wrk.headers["Content-Type"] = "application/json"\n'
                    f'wrk.headers["X-API-Key"] = "{ids["key"]}"\n'
                    "done = function(summary, latency, requests)\n"
                    '  io.write(string.format(\'{"requests": %d, "errors": %d}\\n\','
                    " summary.requests, summary.errors.status + summary.errors.connect"
                    " + summary.errors.read + summary.errors.write + summary.errors.timeout))\n"
                    "end\n"
                )
                out = subprocess.run(
                    [
                        "wrk",
                        "-t1",
                        f"-c{args.connections}",
                        f"-d{args.seconds}s",
                        "-s",
                        str(lua),
                        rg.http_url + "/v1/send",
                    ],
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout
                summary = json.loads(out.strip().splitlines()[-1])
                accepted = summary["requests"] - summary["errors"]
            accepted_at = time.time()
            deadline = time.monotonic() + max(120.0, accepted / 20)
            peak = 0
            delivered, last_change, last_count = 0, time.monotonic(), -1
            while time.monotonic() < deadline:
                delivered = sink_count(sink_out)
                peak = max(peak, proc_status(pid).get("VmRSS", 0))
                if delivered >= accepted:
                    break
                if delivered != last_count:
                    last_count, last_change = delivered, time.monotonic()
                elif time.monotonic() - last_change > 30:
                    break
                time.sleep(0.02)
            done = time.time()
            cpu = cpu_seconds(pid) - cpu0
            sink_cpu = cpu_seconds(sink_proc.pid) - sink_cpu0
            mem = proc_status(pid)
        finally:
            if spy is not None:
                spy.send_signal(2)
                spy.wait(timeout=60)
            rg.terminate()
        return {
            "bench": "bigmail",
            "way": args.way,
            "size": args.size,
            "sign": not args.nosign,
            "accepted": accepted,
            "delivered": delivered,
            "accept_per_s": round(accepted / max(1e-9, accepted_at - start), 1),
            "e2e_per_s": round(delivered / max(1e-9, done - start), 1),
            "cpu_ms_per_msg": round(1000 * cpu / max(1, delivered), 3),
            "sink_cpu_ms_per_msg": round(1000 * sink_cpu / max(1, delivered), 3),
            "peak_rss_mb": max(mem.get("VmHWM", 0), peak),
            "loadavg_before": load_before,
            "loadavg_after": loadavg(),
        }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--way", choices=["http", "smtp"], default="smtp")
    ap.add_argument("--size", type=int, default=102400)
    ap.add_argument("--messages", type=int, default=3000, help="SMTP in: messages to send")
    ap.add_argument("--sessions", type=int, default=20, help="SMTP in: smtp-source sessions")
    ap.add_argument("--seconds", type=int, default=8, help="HTTP in: wrk duration")
    ap.add_argument("--connections", type=int, default=16, help="HTTP in: wrk connections")
    ap.add_argument("--nosign", action="store_true", help="an unsigned sender (no DKIM)")
    ap.add_argument("--profile", help="py-spy record (200 Hz) to this file (.svg or .txt)")
    ap.add_argument("--native", action="store_true", help="with --profile: native frames too")
    args = ap.parse_args()
    for tool in ("smtp-source", "smtp-sink", "wrk"):
        if shutil.which(tool) is None:
            print(json.dumps({"bench": "bigmail", "error": f"{tool} not installed"}))
            return
    print(json.dumps(run(args)))


if __name__ == "__main__":
    main()
