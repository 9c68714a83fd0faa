"""`relaygate serve` as a process: SMTP and HTTP submissions come out equivalent; swaks; TLS."""

from __future__ import annotations

import shutil
import smtplib
import subprocess
import time
from email import message_from_bytes
from email.message import Message
from pathlib import Path

import httpx
import pytest
import trustme

from relaygate.testing.process import RelaygateProcess

CLIENT = "client.test"


def setup(rg: RelaygateProcess) -> str:
    rg.init()
    rg.cli("account", "create", "acme", "--plan", "paid", "--rate-limit", "1000")
    rg.cli("identity", "add", "--account", "1", "example.com", "--verified")
    key: str = rg.cli(
        "key", "create", "--account", "1", "--scope", "email:send", "--scope", "email:read"
    )["key"]
    return key


def wait_for(path: Path, timeout: float = 20) -> bytes:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            return path.read_bytes()
        time.sleep(0.05)
    raise AssertionError(f"{path} never appeared")


def split(raw: bytes) -> tuple[Message, bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    return message_from_bytes(head + b"\r\n\r\n"), body


def events(rg: RelaygateProcess, key: str, msg_id: str) -> list[list[str]]:
    deadline = time.monotonic() + 20
    while True:
        r = httpx.get(f"{rg.http_url}/v1/messages/{msg_id}", headers={"X-API-Key": key})
        found = r.json()
        if found["status"] == "delivered" or time.monotonic() > deadline:
            return [[e["type"] for e in rc["events"]] for rc in found["recipients"]]
        time.sleep(0.05)


def test_smtp_and_http_submissions_come_out_equivalent(tmp_path: Path) -> None:
    rg = RelaygateProcess(tmp_path)
    key = setup(rg)
    with rg:
        r = httpx.post(
            f"{rg.http_url}/v1/send",
            headers={"X-API-Key": key},
            json={
                "from_email": "App <app@example.com>",
                "to": ["r@dest.test"],
                "subject": "Same content",
                "text": "Hello from both ways in.",
                "html": "<p>Hello from both ways in.</p>",
                "tags": ["welcome"],
            },
        )
        assert r.status_code == 200, r.text
        http_id = r.json()["id"]
        http_raw = wait_for(rg.capture_dir / f"{http_id}.eml")
        http_head, http_body = split(http_raw)
        # The same message as an SMTP client would hand it in: the composed MIME, without the
        # capture envelope lines, Message-ID and Date (the client leaves those to relaygate).
        # (and without the DKIM-Signature relaygate added at delivery: a field with its folded lines).
        kept, skipping = [], False
        for line in http_raw.split(b"\r\n\r\n", 1)[0].splitlines(keepends=True):
            if not line[:1].isspace():
                skipping = line.lower().startswith(
                    (
                        b"return-path:",
                        b"x-relaygate-envelope-to:",
                        b"message-id:",
                        b"date:",
                        b"dkim-signature:",
                    )
                )
            if not skipping:
                kept.append(line)
        submitted = b"".join(kept)
        submitted += b"\r\nX-SM-Tags: welcome\r\n\r\n" + http_body
        host, port = rg.smtp_addresses[0]
        with smtplib.SMTP(host, port, local_hostname=CLIENT, timeout=10) as s:
            s.login("apikey", key)
            s.mail("app@example.com")
            s.rcpt("r@dest.test")
            code2, text2 = s.data(submitted)
        assert code2 == 250
        smtp_id = text2.decode().rsplit(" ", 1)[1]
        smtp_raw = wait_for(rg.capture_dir / f"{smtp_id}.eml")
        smtp_head, smtp_body = split(smtp_raw)
        assert smtp_body == http_body  # the MIME body is relayed untouched
        assert smtp_head["Received"] is not None and http_head["Received"] is None
        names = lambda m: [k.lower() for k in m if k.lower() != "received"]  # noqa: E731
        assert sorted(names(smtp_head)) == sorted(names(http_head))
        for name in ("From", "To", "Subject", "MIME-Version", "Content-Type"):
            assert smtp_head[name] == http_head[name], name
        # Both go out with a VERP return path of their own message on the bounce domain.
        assert smtp_head["Return-Path"] != http_head["Return-Path"]
        assert smtp_id[4:] in smtp_head["Return-Path"] and http_id[4:] in http_head["Return-Path"]
        assert smtp_head["Return-Path"].endswith("@bounces.relay.test>")
        assert smtp_head["Message-ID"] == f"<{smtp_id}@relay.test>"
        assert (
            events(rg, key, smtp_id)
            == events(rg, key, http_id)
            == [["queued", "claimed", "delivery"]]
        )
        smtp_info = httpx.get(f"{rg.http_url}/v1/messages/{smtp_id}", headers={"X-API-Key": key})
        assert smtp_info.json()["tags"] == ["welcome"] and smtp_info.json()["channel"] == "smtp"
        # Same policy: an unverified sender is refused both ways.
        bad = httpx.post(
            f"{rg.http_url}/v1/send",
            headers={"X-API-Key": key},
            json={"from_email": "x@other.test", "to": ["r@dest.test"], "subject": "s", "text": "t"},
        )
        assert bad.status_code == 403
        with smtplib.SMTP(host, port, local_hostname=CLIENT, timeout=10) as s:
            s.login("apikey", key)
            assert s.mail("x@other.test")[0] == 550


@pytest.mark.skipif(shutil.which("swaks") is None, reason="swaks is not installed")
def test_swaks_plain_starttls_and_implicit_tls(tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("relay.test", "127.0.0.1")
    cert.private_key_and_cert_chain_pem.write_to_path(tmp_path / "server.pem")
    ca.cert_pem.write_to_path(tmp_path / "ca.pem")
    rg = RelaygateProcess(
        tmp_path,
        smtp={
            "listen": ["127.0.0.1:0"],
            "tls_listen": ["127.0.0.1:0"],
            "tls_cert": str(tmp_path / "server.pem"),
            "tls_key": str(tmp_path / "server.pem"),
        },
    )
    key = setup(rg)
    with rg:
        host, port = rg.smtp_addresses[0]
        tls_host, _, tls_port = rg.info["smtps"][0].rpartition(":")
        base = [
            "swaks", "--helo", CLIENT, "--from", "app@example.com", "--to", "r@dest.test",
            "--h-From", "App <app@example.com>", "--h-Subject", "via swaks",
            "--header", "X-SM-Tags: swaks, e2e", "--auth", "PLAIN",
            "--auth-user", "apikey", "--auth-password", key, "--timeout", "10",
        ]  # fmt: skip
        runs = {
            "plain": ["--server", f"{host}:{port}"],
            "starttls": ["--server", f"{host}:{port}", "--tls", "--tls-verify", "--tls-ca-path", str(tmp_path / "ca.pem")],
            "implicit": ["--server", f"{tls_host}:{tls_port}", "--tls-on-connect", "--tls-verify", "--tls-ca-path", str(tmp_path / "ca.pem")],
        }  # fmt: skip
        ids = {}
        for name, extra in runs.items():
            proc = subprocess.run(
                [*base, *extra, "--tls-sni", "relay.test"] if name != "plain" else [*base, *extra],
                capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            assert proc.returncode == 0, (name, proc.stdout[-2000:], proc.stderr[-2000:])
            line = next(ln for ln in proc.stdout.splitlines() if "queued as msg_" in ln)
            ids[name] = line.rsplit(" ", 1)[1]
        for name, msg_id in ids.items():
            raw = wait_for(rg.capture_dir / f"{msg_id}.eml")
            head, _ = split(raw)
            assert b"X-SM-Tags" not in raw
            expected = {"plain": "ESMTPA", "starttls": "ESMTPSA", "implicit": "ESMTPSA"}[name]
            assert f"with {expected} id {msg_id}" in " ".join(str(head["Received"]).split())
            info = httpx.get(f"{rg.http_url}/v1/messages/{msg_id}", headers={"X-API-Key": key})
            assert info.json()["tags"] == ["swaks", "e2e"]
