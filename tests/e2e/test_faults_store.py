"""The store stops taking writes while the server runs (another process holds SQLite's write lock,
as a full disk or a wedged volume would): /v1/send answers 503 with a JSON detail and Retry-After
(never 500, never a 200 that is not on disk), and answers 200 again once the store recovers."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import httpx
import pytest

from relaygate.testing.process import RelaygateProcess


def test_unwritable_store_answers_503_and_recovers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RELAYGATE_SQLITE_BUSY_TIMEOUT_MS", "300")
    rg = RelaygateProcess(tmp_path)
    rg.init()
    rg.cli("account", "create", "acme", "--plan", "paid", "--rate-limit", "1000")
    rg.cli("identity", "add", "--account", "1", "a@example.com", "--verified")
    secret = rg.cli("key", "create", "--account", "1")["key"]
    db_path = rg.state_dir / "relaygate.sqlite3"
    payload = json.dumps(
        {"from_email": "a@example.com", "to": ["r@dest.test"], "subject": "s", "text": "hi"}
    )
    headers = {"X-API-Key": secret, "Content-Type": "application/json"}
    acked: list[str] = []
    with rg, httpx.Client(base_url=rg.http_url, timeout=10) as client:

        def send() -> httpx.Response:
            r = client.post("/v1/send", headers=headers, content=payload)
            if r.status_code == 200:
                acked.append(r.json()["id"])
            return r

        assert send().status_code == 200
        blocker = sqlite3.connect(db_path, isolation_level=None, timeout=5)
        try:
            blocker.execute("BEGIN EXCLUSIVE")  # nobody else can write now
            started = time.monotonic()
            broken = [send() for _ in range(4)]
            assert time.monotonic() - started < 10
            for r in broken:
                assert r.status_code == 503, r.text
                assert r.json()["detail"] and "Traceback" not in r.text
                assert r.headers["retry-after"].isdigit()
            assert client.get("/readyz").status_code == 503
            assert client.get("/healthz").status_code == 200
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        recovered = [send() for _ in range(5)]
        assert [r.status_code for r in recovered] == [200] * 5
        assert client.get("/readyz").status_code == 200
    shell = sqlite3.connect(str(db_path))
    try:
        stored = {r[0] for r in shell.execute("SELECT id FROM messages")}
    finally:
        shell.close()
    assert stored == set(acked) and len(acked) == 6  # every 200 kept, nothing else admitted
    log = rg.log_path.read_text()
    assert "store unavailable" in log and secret not in log
