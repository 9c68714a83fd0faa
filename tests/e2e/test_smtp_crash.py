"""SIGKILL with SMTP transactions in flight: no 250 without a commit, every 250 delivered."""

from __future__ import annotations

import concurrent.futures
import smtplib
import socket
import threading
import time
from pathlib import Path

from relaygate.store.sqlite import SqliteStore as Store
from relaygate.testing.process import RelaygateProcess

MARK = b"HALF-WRITTEN-MARKER"


def test_kill_mid_data_and_under_load(tmp_path: Path) -> None:
    rg = RelaygateProcess(
        tmp_path, smtp={"listen": ["127.0.0.1:0"], "trusted_networks": {"127.0.0.0/8": 1}}
    )
    rg.init()
    rg.cli(
        "account",
        "create",
        "acme",
        "--plan",
        "paid",
        "--daily-quota",
        "1000000",
        "--rate-limit",
        "100000",
    )
    rg.cli("identity", "add", "--account", "1", "example.com", "--verified")
    rg.start()
    host, port = rg.smtp_addresses[0]
    message = b"From: app@example.com\r\nTo: r@dest.test\r\nSubject: load\r\n\r\nhello\r\n"
    acked: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client() -> None:
        try:
            with smtplib.SMTP(host, port, local_hostname="client.test", timeout=5) as s:
                s.ehlo()
                while not stop.is_set():
                    s.mail("app@example.com")
                    s.rcpt("r@dest.test")
                    code, text = s.data(message)
                    if code == 250:
                        with lock:
                            acked.append(text.decode().rsplit(" ", 1)[1])
        except (smtplib.SMTPException, OSError):
            return  # the server died: no answer, no promise

    # One transaction stopped in the middle of DATA.
    half = socket.create_connection((host, port), timeout=5)
    half_file = half.makefile("rb")
    half_file.readline()
    half.sendall(
        b"EHLO client.test\r\nMAIL FROM:<app@example.com>\r\nRCPT TO:<half@dest.test>\r\nDATA\r\n"
    )
    replies = []
    while not replies or not replies[-1].startswith(b"354"):
        replies.append(half_file.readline())
    half.sendall(
        b"From: app@example.com\r\nTo: half@dest.test\r\nSubject: half\r\n\r\n"
        + MARK
        + b"\r\n" * 50
    )

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        futures = [pool.submit(client) for _ in range(6)]
        deadline = time.monotonic() + 15
        while len(acked) < 150 and time.monotonic() < deadline:
            time.sleep(0.01)
        rg.kill()
        stop.set()
        for f in futures:
            f.result()
    assert len(acked) >= 150
    rest = half_file.read()  # connection gone: EOF or reset, never a 250
    assert b"250" not in rest
    half.close()

    rg.start()
    try:
        deadline = time.monotonic() + 30
        missing = set(acked)
        while missing and time.monotonic() < deadline:
            missing = {m for m in missing if not (rg.capture_dir / f"{m}.eml").exists()}
            time.sleep(0.1)
        assert not missing, f"{len(missing)} acknowledged messages were not delivered"
        for eml in rg.capture_dir.glob("*.eml"):
            assert MARK not in eml.read_bytes()
        store = Store(rg.state_dir / "relaygate.sqlite3").open()
        try:
            assert all(
                r.address != "half@dest.test" for m in acked for r in store.messages.recipients(m)
            )
            for mid in acked:
                assert [r.state for r in store.messages.recipients(mid)] == ["delivered"], mid
        finally:
            store.close()
    finally:
        rg.terminate()
