"""Start ``relaygate serve`` as a real process on ephemeral ports with a temporary state dir.

    with RelaygateProcess(tmp_path, delivery={"mode": "capture"}) as rg:
        rg.http_url            # "http://127.0.0.1:PORT"
        rg.cli("account", "create", "demo", "--plan", "paid")   # parsed --json output

The process writes ``<state_dir>/run/<role>.json`` for each of its roles when its listeners are
up; this helper waits for them. ``kill()`` sends SIGKILL (crash tests), ``terminate()`` SIGTERM
(drain tests).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from relaygate.settings import ROLES


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return (
            "{"
            + ", ".join(f"{json.dumps(str(k))} = {_toml_value(v)}" for k, v in value.items())
            + "}"
        )
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def write_config(
    path: Path, *, top: dict[str, Any] | None = None, **sections: dict[str, Any]
) -> Path:
    lines = [f"{k} = {_toml_value(v)}" for k, v in (top or {}).items()]
    for name, values in sections.items():
        lines.append(f"\n[{name}]")
        lines.extend(f"{k} = {_toml_value(v)}" for k, v in values.items())
    path.write_text("\n".join(lines) + "\n")
    return path


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


class RelaygateProcess:
    def __init__(
        self,
        directory: Path,
        *,
        roles: list[str] | None = None,
        hostname: str = "relay.test",
        top_extra: dict[str, Any] | None = None,
        **sections: dict[str, Any],
    ) -> None:
        self.directory = Path(directory)
        self.state_dir = self.directory / "state"
        self.config = self.directory / "relaygate.toml"
        merged: dict[str, dict[str, Any]] = {
            "http": {"listen": "127.0.0.1:0"},
            "smtp": {"listen": ["127.0.0.1:0"]},
            "delivery": {"mode": "capture", "capture_dir": str(self.directory / "capture")},
            "dns": {"nameservers": ["127.0.0.1:1"]},
        }
        for name, values in sections.items():
            merged.setdefault(name, {}).update(values)
        if not self.config.exists():
            write_config(
                self.config,
                top={
                    "state_dir": str(self.state_dir),
                    "hostname": hostname,
                    "log_json": True,
                    **(top_extra or {}),
                },
                **merged,
            )
        self.roles = roles or []
        self.proc: subprocess.Popen[bytes] | None = None
        self.info: dict[str, Any] = {}
        self.log_path = self.directory / "serve.log"
        self.capture_dir = self.directory / "capture"

    # -- CLI ----------------------------------------------------------------------------------
    def cli(self, *args: str, check: bool = True) -> Any:
        proc = subprocess.run(
            [sys.executable, "-m", "relaygate", "--config", str(self.config), "--json", *args],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if check and proc.returncode != 0:
            raise RuntimeError(
                f"relaygate {' '.join(args)} failed ({proc.returncode}): {proc.stdout} {proc.stderr}"
            )
        return json.loads(proc.stdout) if proc.stdout.strip() else None

    def init(self) -> None:
        self.cli("init")

    # -- process ------------------------------------------------------------------------------
    def start(self, timeout: float = 20.0) -> RelaygateProcess:
        self.init()
        ready = [self.state_dir / "run" / f"{role}.json" for role in self.roles or ROLES]
        cmd = [sys.executable, "-m", "relaygate", "--config", str(self.config), "serve"]
        for role in self.roles:
            cmd += ["--role", role]
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"}
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"relaygate serve exited with {self.proc.returncode}: {self.log_path.read_text()[-3000:]}"
                )
            infos = [_read_json(path) for path in ready]
            if all(info.get("pid") == self.proc.pid for info in infos):
                self.info = infos[0]
                return self
            time.sleep(0.05)
        self.kill()
        raise TimeoutError(
            f"relaygate serve not ready after {timeout}s: {self.log_path.read_text()[-3000:]}"
        )

    @property
    def http_url(self) -> str:
        return f"http://{self.info['http']}"

    @property
    def smtp_addresses(self) -> list[tuple[str, int]]:
        out = []
        for item in self.info.get("smtp", []):
            host, _, port = item.rpartition(":")
            out.append((host.strip("[]"), int(port)))
        return out

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def terminate(self, timeout: float = 30.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def __enter__(self) -> RelaygateProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.terminate(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
