"""Faults an operator meets on day one, driven through the installed ``relaygate`` command: one
clear line each, never a traceback, and never a running instance hidden or disturbed."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from relaygate.testing.process import RelaygateProcess

from .conftest import read_only  # type: ignore[import-not-found]

RELAYGATE = str(Path(sys.executable).with_name("relaygate"))


def relaygate(
    config: Path, *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [RELAYGATE, "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
    )


def refused(proc: subprocess.CompletedProcess[str], *fragments: str) -> list[str]:
    """The command failed with only ``relaygate: …`` lines on stderr, each fragment among them."""
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    lines = proc.stderr.splitlines()
    assert lines and all(line.startswith("relaygate: ") for line in lines), proc.stderr
    for fragment in fragments:
        assert fragment in proc.stderr, proc.stderr
    return lines


def run_files(state: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((state / "run").iterdir())}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def roles_of(rg: RelaygateProcess) -> dict[str, tuple[str, int | None]]:
    return {r["role"]: (r["state"], r["pid"]) for r in rg.cli("status")["roles"]}


def test_a_second_serve_on_the_same_state_dir_is_refused_and_the_first_runs_on(
    tmp_path: Path,
) -> None:
    with RelaygateProcess(tmp_path) as rg:
        assert rg.proc is not None
        before = run_files(rg.state_dir)
        proc = relaygate(rg.config, "serve")
        [_one_line] = refused(
            proc,
            f"roles http, smtp, relay, webhooks are already served on {rg.state_dir}"
            f" by pid {rg.proc.pid}: stop it first",
        )
        assert run_files(rg.state_dir) == before  # not one file of the first touched
        assert httpx.get(rg.http_url + "/healthz", timeout=10).status_code == 200
        assert roles_of(rg) == dict.fromkeys(
            ("http", "smtp", "relay", "webhooks"), ("running", rg.proc.pid)
        )


def test_a_port_in_use_is_named_and_the_instance_holding_it_is_untouched(tmp_path: Path) -> None:
    http_port, smtp_port = free_port(), free_port()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = RelaygateProcess(
        tmp_path / "a",
        http={"listen": f"127.0.0.1:{http_port}"},
        smtp={"listen": [f"127.0.0.1:{smtp_port}"]},
    )
    with first:
        before = run_files(first.state_dir)
        second = RelaygateProcess(
            tmp_path / "b",
            http={"listen": f"127.0.0.1:{http_port}"},
            smtp={"listen": [f"127.0.0.1:{smtp_port}"]},
        )
        second.init()
        proc = relaygate(second.config, "serve")
        refused(
            proc,
            f"http.listen 127.0.0.1:{http_port}: cannot listen: address already in use",
            f"smtp.listen 127.0.0.1:{smtp_port}: cannot listen: address already in use",
        )
        assert run_files(first.state_dir) == before
        assert not list((second.state_dir / "run").glob("*.json"))
        assert roles_of(second)["http"] == ("stopped", None)  # its locks went with it
        assert httpx.get(first.http_url + "/healthz", timeout=10).status_code == 200


def test_split_roles_lock_per_role_and_status_shows_each(tmp_path: Path) -> None:
    http = RelaygateProcess(tmp_path, roles=["http"])
    relay = RelaygateProcess(tmp_path, roles=["relay"])  # the same config and state dir
    with http, relay:
        assert http.proc is not None and relay.proc is not None
        proc = relaygate(http.config, "serve", "--role", "relay")
        refused(proc, f"role relay is already served on {http.state_dir} by pid {relay.proc.pid}")
        assert roles_of(http) == {
            "http": ("running", http.proc.pid),
            "smtp": ("stopped", None),
            "relay": ("running", relay.proc.pid),
            "webhooks": ("stopped", None),
        }
        text = relaygate(http.config, "status").stdout
        assert f"http      running      pid {http.proc.pid}  http {http.info['http']}" in text
        assert "smtp      stopped" in text
        assert relay.terminate() == 0
        assert roles_of(http)["relay"] == ("stopped", None)
        assert roles_of(http)["http"] == ("running", http.proc.pid)  # the others still show


def test_make_run_twice(tmp_path: Path) -> None:
    ports = [
        "--http-listen",
        f"127.0.0.1:{free_port()}",
        "--smtp-listen",
        f"127.0.0.1:{free_port()}",
    ]
    config = Path("var/relaygate.toml")
    log = (tmp_path / "first.log").open("wb")
    first = subprocess.Popen(
        [RELAYGATE, "--config", str(config), "quickstart", *ports],
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        ready = tmp_path / "var" / "run" / "http.json"
        deadline = time.monotonic() + 30
        while not (
            ready.exists() and json.loads(ready.read_text() or "{}").get("pid") == first.pid
        ):
            assert first.poll() is None and time.monotonic() < deadline, (
                tmp_path / "first.log"
            ).read_text()
            time.sleep(0.05)
        before = run_files(tmp_path / "var")
        second = relaygate(config, "quickstart", *ports, cwd=tmp_path)
        refused(second, f"already served on {tmp_path / 'var'} by pid {first.pid}")
        assert "relaygate is starting" not in second.stdout  # no banner for a start that fails
        assert run_files(tmp_path / "var") == before
        info = json.loads(ready.read_text())
        assert httpx.get(f"http://{info['http']}/healthz", timeout=10).status_code == 200
    finally:
        first.terminate()
        assert first.wait(timeout=30) == 0
        log.close()


def test_a_read_only_state_dir_is_refused_before_starting(tmp_path: Path) -> None:
    rg = RelaygateProcess(tmp_path)
    rg.init()
    cmd = read_only(rg.state_dir, [RELAYGATE, "--config", str(rg.config), "serve"])
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    lines = refused(proc, f"state_dir {rg.state_dir}: not writable (")
    assert any("Read-only file system" in line or "Permission denied" in line for line in lines)
    assert "group commit" not in proc.stdout + proc.stderr


def test_a_state_dir_typo_or_one_without_a_store_says_to_run_init(tmp_path: Path) -> None:
    rg = RelaygateProcess(tmp_path)
    rg.init()
    config = tmp_path / "typo.toml"
    text = rg.config.read_text().replace(str(rg.state_dir), str(tmp_path / "stat"))
    config.write_text(text)
    for args in (("serve",), ("check-config",)):
        proc = relaygate(config, *args)
        assert proc.returncode != 0 and "Traceback" not in proc.stderr
        assert (
            f"state_dir {tmp_path / 'stat'}: no such directory (run `relaygate --config {config} init`"
            in proc.stderr
        )
    (tmp_path / "stat").mkdir()
    proc = relaygate(config, "serve")
    refused(proc, f"state_dir {tmp_path / 'stat'}: no relaygate store in it (relaygate.sqlite3)")
    assert list((tmp_path / "stat").iterdir()) == []  # serve created nothing there
    (rg.state_dir / "secret.key").unlink()
    refused(relaygate(rg.config, "serve"), "secret.key: missing (run `relaygate")
