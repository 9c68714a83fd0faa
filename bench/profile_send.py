"""Profile ``relaygate serve --role http`` under bench/send.py's closed-loop load with py-spy.

    .venv/bin/python bench/profile_send.py [--kind template|inline] [--seconds 15] [--out FILE]

Starts a server like bench/send.py, runs wrk against it and records the server with
``py-spy record --gil -f raw`` (py-spy must be installed in the venv), then prints the server's
CPU time per accepted request (from /proc, all threads; steadier than req/s on a shared
machine) and the top functions by self and by inclusive share of the GIL-holding samples.
``--no-profile`` measures the CPU per request without py-spy attached.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _load import run_wrk

from relaygate.testing.process import RelaygateProcess

TEXT = ("Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 18)[:1000]
PAYLOADS = {
    "inline": {
        "from_email": "bench@example.com",
        "to": ["r@dest.test"],
        "subject": "Benchmark message",
        "html": f"<p>{TEXT}</p>",
        "text": TEXT,
    },
    "template": {
        "from_email": "bench@example.com",
        "to": ["r@dest.test"],
        "template": "welcome",
        "variables": {"user": {"first_name": "Alex"}},
    },
}


def summarize(raw: Path, top: int) -> None:
    own: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        n = int(count_text)
        frames = [
            f.split(" (")[0] + " " + f.rpartition("/")[2].split(":")[0] for f in stack.split(";")
        ]
        total += n
        own[frames[-1]] += n
        for f in set(frames):
            incl[f] += n
    print(f"samples {total}")
    for title, counter in (("self", own), ("inclusive", incl)):
        print(f"--- {title}")
        for name, n in counter.most_common(top):
            print(f"{100 * n / total:5.1f}%  {name}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kind", choices=sorted(PAYLOADS), default="template")
    ap.add_argument("--seconds", type=int, default=15)
    ap.add_argument("--out", default="")
    ap.add_argument("--top", type=int, default=45)
    ap.add_argument("--no-profile", action="store_true", help="only the server's CPU per request")
    ap.add_argument(
        "--all-threads", action="store_true", help="sample every running thread, not the GIL holder"
    )
    args = ap.parse_args()
    out = Path(args.out or tempfile.mktemp(suffix=".txt"))
    with tempfile.TemporaryDirectory() as tmp:
        rg = RelaygateProcess(Path(tmp), roles=["http"], top_extra={"log_level": "warning"})
        rg.init()
        rg.cli("account", "create", "bench", "--plan", "paid", "--daily-quota", "100000000",
               "--rate-limit", "1000000")  # fmt: skip
        rg.cli("identity", "add", "--account", "1", "example.com", "--verified")
        secret = rg.cli("key", "create", "--account", "1")["key"]
        rg.start()
        assert rg.proc is not None
        url = f"http://{rg.info['http']}/v1/send"
        body = json.dumps(PAYLOADS[args.kind]).encode()
        result: dict[str, object] = {}
        load = threading.Thread(
            target=lambda: result.update(
                run_wrk(url, body, {"X-API-Key": secret}, seconds=args.seconds + 3, connections=32)
            )
        )
        cpu_before = _cpu_seconds(rg.proc.pid)
        load.start()
        if args.no_profile:
            load.join()
        else:
            spy = Path(sys.executable).with_name("py-spy")
            subprocess.run(
                [str(spy), "record", "-p", str(rg.proc.pid), "-r", "100", "-d", str(args.seconds),
                 "-f", "raw", "-o", str(out), "--nonblocking",
                 *([] if args.all_threads else ["--gil"])],
                check=True, capture_output=True,
            )  # fmt: skip
            load.join()
        cpu = _cpu_seconds(rg.proc.pid) - cpu_before
        rg.terminate()
    requests = result.get("requests")
    per_request = round(cpu / requests * 1e6, 1) if isinstance(requests, int) and requests else None
    print(
        json.dumps(
            {
                "kind": args.kind,
                "load": os.getloadavg()[0],
                "server_cpu_us_per_request": per_request,
            }
            | result
        )
    )
    if not args.no_profile:
        summarize(out, args.top)


def _cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


if __name__ == "__main__":
    main()
