"""The synchronous smarthost hand-off keeps its upstream session open between messages (the
connection cache) and says QUIT to the upstream when relaygate shuts down, also when the process
runs the http role alone (its hand-off worker is not the relay role's)."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from relaygate.testing.process import RelaygateProcess
from relaygate.testing.sink_thread import ThreadedSink


def test_sync_handoff_reuses_the_upstream_session_and_quits_it_at_shutdown(
    tmp_path: Path,
) -> None:
    with ThreadedSink() as sink:
        assert sink.sink is not None
        rg = RelaygateProcess(
            tmp_path,
            roles=["http"],
            delivery={
                "mode": "smarthost",
                "smarthost": f"127.0.0.1:{sink.port}",
                "smarthost_tls": "none",
                "smarthost_sync": True,
                "connection_cache_seconds": 60,
            },
        )
        rg.init()
        rg.cli("account", "create", "acme", "--plan", "paid")
        rg.cli("identity", "add", "--account", "1", "a@example.com", "--verified")
        secret = rg.cli("key", "create", "--account", "1")["key"]
        rg.start()
        try:
            with httpx.Client(base_url=rg.http_url, timeout=15) as client:
                for i in range(2):
                    r = client.post(
                        "/v1/send",
                        headers={"X-API-Key": secret},
                        json={
                            "from_email": "a@example.com",
                            "to": [f"r{i}@dest.test"],
                            "subject": "s",
                            "text": "hi",
                        },
                    )
                    assert r.status_code == 200, r.text
            assert len(sink.messages()) == 2
            assert sink.sink.connections == 1  # the second message reused the session
            assert "QUIT" not in sink.sink.verbs()
            code = rg.terminate(timeout=20)
        finally:
            rg.kill()
        assert code == 0, rg.log_path.read_text()[-2000:]
        deadline = time.monotonic() + 5
        while "QUIT" not in sink.sink.verbs() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert sink.sink.verbs()[-1] == "QUIT"
