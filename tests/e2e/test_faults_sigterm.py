"""SIGTERM while HTTP requests and MX deliveries are in flight: a clean exit 0, every 200 in the
store, no lease left behind, and a restart delivers the rest exactly once."""

from __future__ import annotations

import concurrent.futures
import json
import threading
import time
from pathlib import Path

import httpx

from relaygate.store.sqlite import SqliteStore as Store
from relaygate.testing.dns import DNSServer
from relaygate.testing.process import RelaygateProcess
from relaygate.testing.sink_thread import ThreadedSink

ZONE = {"dest.test": {"MX": [(10, "mx.dest.test")]}, "mx.dest.test": {"A": ["127.0.0.1"]}}


def test_sigterm_drains_in_flight_work(tmp_path: Path) -> None:
    with DNSServer(ZONE) as dns, ThreadedSink(data_delay=0.3) as sink:
        rg = RelaygateProcess(
            tmp_path,
            delivery={"mode": "mx", "mx_port": sink.port, "min_backoff": 1, "max_backoff": 2},
            dns={"nameservers": [dns.nameserver], "timeout": 2},
        )
        rg.init()
        rg.cli("account", "create", "acme", "--plan", "paid", "--rate-limit", "100000")
        added = rg.cli("identity", "add", "--account", "1", "example.com", "--verified")
        for record in added["records"]:  # publish them, or the re-check marks the domain failing
            if record["required"]:
                dns.set(record["name"], record["type"], [record["strings"]])
        secret = rg.cli("key", "create", "--account", "1")["key"]
        rg.start()
        try:
            acked: list[str] = []
            lock = threading.Lock()
            stop = threading.Event()
            payload = json.dumps(
                {"from_email": "a@example.com", "to": ["r@dest.test"], "subject": "s", "text": "hi"}
            )

            def client() -> None:
                with httpx.Client(base_url=rg.http_url, timeout=15) as c:
                    while not stop.is_set():
                        try:
                            r = c.post(
                                "/v1/send",
                                headers={"X-API-Key": secret, "Content-Type": "application/json"},
                                content=payload,
                            )
                        except httpx.HTTPError:
                            return  # the listener closed: no answer, no promise
                        if r.status_code == 200:
                            with lock:
                                acked.append(r.json()["id"])
                        elif r.status_code != 503:
                            raise AssertionError(f"unexpected {r.status_code}: {r.text}")

            with concurrent.futures.ThreadPoolExecutor(6) as pool:
                futures = [pool.submit(client) for _ in range(6)]
                deadline = time.monotonic() + 15
                while (len(acked) < 100 or not sink.messages()) and time.monotonic() < deadline:
                    time.sleep(0.01)
                assert sink.messages(), "no delivery started before SIGTERM"
                started = time.monotonic()
                assert rg.proc is not None
                rg.proc.send_signal(15)
                code = rg.proc.wait(timeout=20)
                took = time.monotonic() - started
                stop.set()
                for f in futures:
                    f.result()
            assert code == 0, rg.log_path.read_text()[-2000:]
            assert took < 10, f"drain took {took:.1f}s"
            delivered_before = len(sink.messages())

            store = Store(rg.state_dir / "relaygate.sqlite3").open()
            try:
                for mid in acked:
                    assert store.messages.get(mid) is not None, (
                        f"{mid} was acknowledged but is not stored"
                    )
                states = store.queue.count_by_state()
                assert states.get("active", 0) == 0, states
                assert not [
                    r.id
                    for mid in acked
                    for r in store.messages.recipients(mid)
                    if r.lease_owner is not None
                ]
                assert states.get("delivered", 0) == delivered_before
            finally:
                store.close()
            assert delivered_before < len(acked), "nothing was left for the restart"

        finally:
            rg.kill()  # only if a failed assertion left it running
        assert sink.sink is not None
        sink.sink.data_delay = 0
        rg.start()
        try:
            got = sink.wait_for(len(acked), timeout=30)
            time.sleep(0.3)  # a duplicate would arrive now
            assert len(sink.messages()) == len(got) == len(acked)
        finally:
            assert rg.terminate(timeout=20) == 0
        store = Store(rg.state_dir / "relaygate.sqlite3").open()
        try:
            assert all(
                [r.state for r in store.messages.recipients(mid)] == ["delivered"] for mid in acked
            )
        finally:
            store.close()
