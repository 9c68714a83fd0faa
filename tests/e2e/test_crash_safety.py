"""SIGKILL while requests are in flight: every 200 survives the restart and is delivered."""

from __future__ import annotations

import concurrent.futures
import json
import threading
import time
from pathlib import Path

import httpx

from relaygate.testing.process import RelaygateProcess


def test_sigkill_under_load_loses_no_acknowledged_message(tmp_path: Path) -> None:
    rg = RelaygateProcess(tmp_path)
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
    secret = rg.cli("key", "create", "--account", "1")["key"]
    rg.start()
    acked: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()
    payload = json.dumps(
        {"from_email": "a@example.com", "to": ["r@dest.test"], "subject": "s", "text": "hello"}
    )

    def client() -> None:
        with httpx.Client(base_url=rg.http_url, timeout=5) as c:
            while not stop.is_set():
                try:
                    r = c.post(
                        "/v1/send",
                        headers={"X-API-Key": secret, "Content-Type": "application/json"},
                        content=payload,
                    )
                except httpx.HTTPError:
                    return  # the server died mid-request: no answer, no promise
                if r.status_code == 200:
                    with lock:
                        acked.append(r.json()["id"])

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(client) for _ in range(8)]
        deadline = time.monotonic() + 10
        while len(acked) < 150 and time.monotonic() < deadline:
            time.sleep(0.01)
        rg.kill()
        stop.set()
        for f in futures:
            f.result()
    assert len(acked) >= 150
    rg.start()
    try:
        deadline = time.monotonic() + 30
        missing = set(acked)
        while missing and time.monotonic() < deadline:
            missing = {m for m in missing if not (rg.capture_dir / f"{m}.eml").exists()}
            time.sleep(0.1)
        assert not missing, f"{len(missing)} acknowledged messages were not delivered"
        # The store agrees: every acknowledged message is there and delivered.
        from relaygate.store.sqlite import SqliteStore as Store

        store = Store(rg.state_dir / "relaygate.sqlite3").open()
        for mid in acked:
            rows = store.messages.recipients(mid)
            assert [r.state for r in rows] == ["delivered"], mid
        store.close()
    finally:
        rg.terminate()
    log = rg.log_path.read_text()
    assert secret not in log
