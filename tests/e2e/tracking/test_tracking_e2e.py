"""Send with tracking → the captured per-recipient body → follow the pixel and a link with httpx →
``open`` and ``click`` webhooks arrive with the right recipient, URL and flags."""

from __future__ import annotations

import json
import re
import threading
import time
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from relaygate.events.signing import verify
from relaygate.testing.process import RelaygateProcess


class Receiver:
    def __init__(self) -> None:
        self.secret = ""
        self.events: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                ok = verify(body, self.headers.get("X-SM-Signature", ""), outer.secret)
                if ok:
                    outer.events.append(json.loads(body))
                self.send_response(200 if ok else 401)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def wait_for(predicate: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_open_and_click_reach_the_webhook(tmp_path: Path) -> None:
    receiver = Receiver()
    rg = RelaygateProcess(tmp_path, webhooks={"allow_private": True, "timeout": 5})
    rg.init()
    rg.cli("account", "create", "acme", "--plan", "paid")
    rg.cli("account", "set", "1", "--track-opens", "--track-clicks")
    rg.cli("identity", "add", "--account", "1", "example.com", "--verified")
    secret = rg.cli("key", "create", "--account", "1")["key"]
    hook = rg.cli(
        "webhook",
        "add",
        "--account",
        "1",
        "--event",
        "open",
        "--event",
        "click",
        f"http://127.0.0.1:{receiver.port}/hook",
    )
    receiver.secret = hook["secret"]
    with rg:
        html = (
            '<html><body><p>Hi</p><a href="https://shop.example.com/offer?a=1&amp;b=2">Offer</a>'
            '<a href="mailto:help@example.com">Mail us</a></body></html>'
        )
        r = httpx.post(
            f"{rg.http_url}/v1/send",
            headers={"X-API-Key": secret},
            json={
                "from_email": "a@example.com",
                "to": ["one@dest.test", "two@dest.test"],
                "subject": "Deal",
                "html": html,
                "text": "Deal",
            },
        )
        assert r.status_code == 200, r.text
        mid = r.json()["id"]
        files = [rg.capture_dir / f"{mid}.0.eml", rg.capture_dir / f"{mid}.1.eml"]
        wait_for(lambda: all(f.exists() for f in files))
        bodies = []
        for f in files:
            parsed = message_from_bytes(f.read_bytes(), policy=policy.default)
            bodies.append(
                next(p for p in parsed.walk() if p.get_content_type() == "text/html").get_content()
            )
        assert bodies[0] != bodies[1]  # per-recipient tokens
        assert 'href="mailto:help@example.com"' in bodies[0]  # left alone
        click = re.search(r'href="([^"]*/t/c/[^"]+)"', bodies[1])
        pixel = re.search(r'src="([^"]*/t/o/[^"]+)"', bodies[1])
        assert click and pixel

        # public_url defaults to the configured listen address (port 0 here): reach the real port.
        def local(url: str) -> str:
            return re.sub(r"^http://[^/]+", rg.http_url, url.replace("&amp;", "&"))

        ua = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"
        with httpx.Client() as c:
            got = c.get(local(pixel.group(1)), headers={"User-Agent": ua})
            assert got.status_code == 200 and got.headers["content-type"] == "image/gif"
            redirect = c.get(local(click.group(1)), headers={"User-Agent": ua})
            assert redirect.status_code == 302
            assert redirect.headers["location"] == "https://shop.example.com/offer?a=1&b=2"
            forged = c.get(local(click.group(1))[:-3] + "AAA")
            assert forged.status_code == 404 and "location" not in forged.headers
        wait_for(lambda: {e["event_type"] for e in receiver.events} >= {"open", "click"})
        by_type = {e["event_type"]: e for e in receiver.events}
        assert by_type["click"]["payload"]["recipients"] == ["two@dest.test"]
        assert by_type["click"]["payload"]["url"] == "https://shop.example.com/offer?a=1&b=2"
        assert by_type["open"]["payload"]["recipients"] == ["two@dest.test"]
        for e in by_type.values():
            p = e["payload"]
            assert p["sm_mail_id"] == mid and p["user_agent"] == ua and p["ip"] == "127.0.0.1"
            # A browser agent, but within seconds of delivery: flagged a scanner, so not a first human hit.
            assert (p["is_proxy"], p["is_scanner"], p["first"]) == (False, True, False)
    receiver.server.shutdown()
