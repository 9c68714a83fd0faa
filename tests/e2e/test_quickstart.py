"""`make run`'s command, driven as a newcomer would: start it, paste the printed curl, find the .eml."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def relaygate_bin() -> list[str]:
    exe = Path(sys.executable).with_name("relaygate")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "relaygate"]


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_quickstart_prints_a_curl_that_sends_a_captured_mail(tmp_path: Path) -> None:
    http_port, smtp_port = free_port(), free_port()
    cmd = [
        *relaygate_bin(),
        "--config",
        "var/relaygate.toml",
        "quickstart",
        "--http-listen",
        f"127.0.0.1:{http_port}",
        "--smtp-listen",
        f"127.0.0.1:{smtp_port}",
    ]
    for run in range(2):  # re-running keeps the state
        log = (tmp_path / f"run{run}.log").open("wb")
        proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
        try:
            ready = tmp_path / "var" / "run" / "http.json"
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not (
                ready.exists() and json.loads(ready.read_text() or "{}").get("pid") == proc.pid
            ):
                assert proc.poll() is None, (tmp_path / f"run{run}.log").read_text()
                time.sleep(0.05)
            output = (tmp_path / f"run{run}.log").read_text()
            assert f"http://127.0.0.1:{http_port}" in output and f"127.0.0.1:{smtp_port}" in output
            curl = re.search(r"^\s*(curl .*?)(?=\n\s*\n)", output, re.S | re.M)
            assert curl is not None, output
            reply = subprocess.run(
                ["bash", "-c", curl.group(1)], capture_output=True, text=True, timeout=30
            )
            answer = json.loads(reply.stdout)
            assert answer["status"] == "queued"
            eml = tmp_path / "var" / "capture" / f"{answer['id']}.eml"
            deadline = time.monotonic() + 10
            while not eml.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            assert b"Subject: Hello" in eml.read_bytes()
        finally:
            proc.terminate()
            assert proc.wait(timeout=20) == 0
            log.close()
    assert len(list((tmp_path / "var" / "capture").glob("*.eml"))) == 2
    key_file = tmp_path / "var" / "demo-key"
    assert key_file.stat().st_mode & 0o777 == 0o600
