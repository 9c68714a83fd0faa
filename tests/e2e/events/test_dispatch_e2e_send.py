"""A real ``relaygate serve`` (capture delivery) with webhooks registered through the CLI: a real
send produces a ``delivery`` event that two customer receivers verify, the reference's Node.js
snippet and a Python one using ``relaygate.events.signing``; a tampered body is refused by both."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from relaygate.events.signing import verify, verify_v2
from relaygate.testing.process import RelaygateProcess

HERE = Path(__file__).parent
NODE = shutil.which("node") or ("/usr/bin/node" if os.path.exists("/usr/bin/node") else None)


class PythonReceiver:
    """A customer's receiver in Python: 200 when both signatures verify, else 401."""

    def __init__(self) -> None:
        self.secret = ""
        self.seen: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                headers = {k: v for k, v in self.headers.items()}
                v1 = verify(body, self.headers.get("X-SM-Signature", ""), outer.secret)
                v2 = verify_v2(body=body, headers=headers, secrets=outer.secret, now=time.time())
                outer.seen.append({"body": body, "headers": headers, "verified": v1 and v2})
                self.send_response(200 if v1 and v2 else 401)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> PythonReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class Tap:
    """Records what relaygate sends and passes it on unchanged to the Node.js receiver."""

    def __init__(self) -> None:
        self.target = ""
        self.seen: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                headers = _signed_headers(dict(self.headers.items()))
                status = httpx.post(outer.target, content=body, headers=headers).status_code
                outer.seen.append({"body": body, "headers": headers, "status": status})
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _signed_headers(headers: dict[str, str]) -> dict[str, str]:
    return {
        k: v
        for k, v in headers.items()
        if k.lower().startswith(("x-sm-", "webhook-", "content-type"))
    }


def _wait(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.mark.skipif(NODE is None, reason="node is not installed; the Node.js receiver cannot run")
def test_real_send_reaches_both_receivers_signed(tmp_path: Path) -> None:
    rg = RelaygateProcess(tmp_path, webhooks={"allow_private": True, "timeout": 5})
    rg.init()
    rg.cli("account", "create", "acme", "--plan", "paid")
    rg.cli("identity", "add", "--account", "1", "example.com", "--verified")
    key = rg.cli("key", "create", "--account", "1", "--scope", "email:send")["key"]
    tap = Tap()
    node_hook = rg.cli("webhook", "add", "--account", "1", f"http://127.0.0.1:{tap.port}/events")
    with PythonReceiver() as py:
        py_hook = rg.cli(
            "webhook",
            "add",
            "--account",
            "1",
            "--event",
            "delivery",
            f"http://127.0.0.1:{py.port}/hooks?src=relaygate",
        )
        py.secret = py_hook["secret"]
        node = subprocess.Popen(
            [str(NODE), str(HERE / "receiver.js")],
            cwd=HERE,
            env={
                "PATH": os.environ.get("PATH", ""),
                "WEBHOOK_SECRET": node_hook["secret"],
            },
            stdout=subprocess.PIPE,
            text=True,
        )
        node_log: list[dict[str, Any]] = []
        assert node.stdout is not None
        node_port = json.loads(node.stdout.readline())["port"]
        tap.target = f"http://127.0.0.1:{node_port}/events"
        reader = threading.Thread(
            target=lambda: node_log.extend(json.loads(line) for line in node.stdout),  # type: ignore[union-attr]
            daemon=True,
        )
        reader.start()
        try:
            with rg:
                answer = httpx.post(
                    f"{rg.http_url}/v1/send",
                    headers={"X-API-Key": key},
                    json={
                        "from_email": "news@example.com",
                        "to": ["recipient@example.net"],
                        "subject": "Hello",
                        "text": "Hi",
                        "tags": ["welcome"],
                    },
                    timeout=10,
                ).json()
                assert answer["status"] == "queued", answer
                _wait(lambda: py.seen and node_log and tap.seen, 20, "both receivers")
                [got] = py.seen
                assert got["verified"], "the Python receiver refused relaygate's signatures"
                assert node_log == [
                    {
                        "verified": True,
                        "event_id": got["headers"]["X-SM-Event-Id"],
                        "event_type": "delivery",
                    }
                ]
                event = json.loads(got["body"])
                assert event["event_type"] == "delivery" and event["user_id"] == 1
                payload = event["payload"]
                assert payload["sm_mail_id"] == answer["id"]
                assert payload["recipients"] == ["recipient@example.net"]
                assert payload["tags"] == ["welcome"]
                assert payload["message_id"].startswith("<") and payload["smtp_response"]
                assert list(payload) == [
                    "sm_mail_id",
                    "message_id",
                    "recipients",
                    "smtp_response",
                    "event_timestamp",
                    "tags",
                ]
                # a tampered body with the genuine headers: both receivers refuse it
                [via_tap] = tap.seen
                assert via_tap["status"] == 200
                for port, genuine in ((node_port, via_tap), (py.port, got)):
                    headers = _signed_headers(genuine["headers"])
                    tampered = genuine["body"].replace(b'"welcome"', b'"welcomE"')
                    assert tampered != genuine["body"]
                    url = f"http://127.0.0.1:{port}/"
                    assert httpx.post(url, content=tampered, headers=headers).status_code == 401
                    assert (
                        httpx.post(url, content=genuine["body"], headers=headers).status_code == 200
                    )
                # the operator's view: one succeeded attempt per webhook
                for hook in (node_hook, py_hook):
                    shown = rg.cli("webhook", "show", hook["id"])
                    assert shown["deliveries"]["succeeded"] == 1, shown
                    [attempt] = rg.cli("webhook", "attempts", hook["id"])
                    assert attempt["status"] == 200 and attempt["outcome"] == "ok"
            log = rg.log_path.read_text()
            assert node_hook["secret"] not in log and py_hook["secret"] not in log
        finally:
            tap.close()
            node.terminate()
            node.wait(timeout=10)
