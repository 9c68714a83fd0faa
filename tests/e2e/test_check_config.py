"""``relaygate check-config`` looks past the file's syntax at what it points to (issue 15 item 7):
a missing TLS certificate, an unusable state directory, a short secret, a binary or absurdly
nested file — every problem listed at once, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import trustme

from relaygate.testing.process import RelaygateProcess

from .conftest import read_only  # type: ignore[import-not-found]

RELAYGATE = str(Path(sys.executable).with_name("relaygate"))


def check(config: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [RELAYGATE, "--config", str(config), *extra, "check-config"],
        capture_output=True,
        text=True,
        timeout=60,
    )


def problems(proc: subprocess.CompletedProcess[str]) -> list[str]:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    lines = proc.stderr.splitlines()
    assert lines[0] == "invalid configuration:", proc.stderr
    return [line.removeprefix("  - ") for line in lines[1:]]


def test_a_good_setup_is_ok(tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("relay.test")
    cert.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "server.pem"))
    pem = str(tmp_path / "server.pem")
    rg = RelaygateProcess(tmp_path, smtp={"tls_cert": pem, "tls_key": pem})
    rg.init()
    proc = check(rg.config)
    assert proc.returncode == 0 and proc.stdout.strip() == f"{rg.config}: ok", proc.stderr


def test_every_problem_of_the_host_is_listed_at_once(tmp_path: Path) -> None:
    rg = RelaygateProcess(
        tmp_path,
        smtp={"tls_cert": str(tmp_path / "missing.crt"), "tls_key": str(tmp_path / "missing.key")},
    )
    rg.init()
    (rg.state_dir / "secret.key").write_bytes(b"x\n")
    found = problems(check(rg.config))
    assert found == [
        f"{rg.config}: secret_key_file {rg.state_dir / 'secret.key'}: 1 byte; at least 32 are"
        " needed (init writes 64 random hex characters)",
        f"{rg.config}: smtp.tls_cert {tmp_path / 'missing.crt'}: no such file",
        f"{rg.config}: smtp.tls_key {tmp_path / 'missing.key'}: no such file",
    ]
    (rg.state_dir / "secret.key").write_bytes(b"")
    assert "secret.key: 0 bytes; at least 32" in problems(check(rg.config))[0]
    proc = check(rg.config, "--json")
    assert proc.returncode == 2
    assert json.loads(proc.stdout)["problems"][0].endswith(
        "0 bytes; at least 32 are needed (init writes 64 random hex characters)"
    )


def test_a_certificate_that_is_not_one(tmp_path: Path) -> None:
    (tmp_path / "junk.pem").write_text("-----BEGIN CERTIFICATE-----\nnot base64\n")
    rg = RelaygateProcess(
        tmp_path,
        smtp={"tls_cert": str(tmp_path / "junk.pem"), "tls_key": str(tmp_path / "junk.pem")},
    )
    rg.init()
    [found] = problems(check(rg.config))
    assert "not a PEM certificate chain and its private key" in found


def test_an_unwritable_state_dir(tmp_path: Path) -> None:
    rg = RelaygateProcess(tmp_path)
    rg.init()
    cmd = read_only(rg.state_dir, [RELAYGATE, "--config", str(rg.config), "check-config"])
    [found] = problems(subprocess.run(cmd, capture_output=True, text=True, timeout=60))
    assert found.startswith(f"{rg.config}: state_dir {rg.state_dir}: not writable (")


def test_a_state_dir_that_is_a_file(tmp_path: Path) -> None:
    rg = RelaygateProcess(tmp_path)
    rg.init()
    rg.config.write_text(rg.config.read_text().replace(str(rg.state_dir), str(rg.config)))
    [found] = problems(check(rg.config))
    assert found == f"{rg.config}: state_dir {rg.config}: not a directory"


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (bytes(range(256)) * 4, "not UTF-8 text (byte 128)"),
        (b"a = " + b"[" * 5000 + b"]" * 5000, "nested too deeply"),
        (b"a = " + b"{b=" * 5000 + b"1" + b"}" * 5000, "nested too deeply"),
        (b"state_dir = 'x\x00'", "not valid TOML"),
        (b'state_dir = "x\\u0000"', "state_dir: must not contain a NUL character"),
        (b"x" * (1024 * 1024 + 1), "larger than 1 MiB"),
    ],
    ids=["binary", "deep arrays", "deep tables", "raw NUL", "escaped NUL", "huge"],
)
def test_files_that_are_not_configurations(tmp_path: Path, content: bytes, says: str) -> None:
    config = tmp_path / "relaygate.toml"
    config.write_bytes(content)
    [found] = problems(check(config))
    assert says in found
