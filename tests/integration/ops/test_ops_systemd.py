"""The install steps that run without systemd as PID 1, checked with systemd's own tools.

``systemd/install.sh --destdir`` stages the files into a temporary root; ``systemd-analyze
verify``/``security``, ``systemd-sysusers`` and ``systemd-tmpfiles`` then run against that root
with ``--root``, never against this host.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
INSTALL_SH = REPO / "systemd" / "install.sh"
SERVICES = (
    "relaygate.service",
    "relaygate-http.service",
    "relaygate-smtp.service",
    "relaygate-relay.service",
    "relaygate-webhooks.service",
)
UNITS = (*SERVICES, "relaygate.target")
HOST_UNIT_DIR = next(
    (p for p in (Path("/usr/lib/systemd/system"), Path("/lib/systemd/system")) if p.is_dir()), None
)


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not installed (Debian package: systemd)")
    return path


def run_install(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", str(INSTALL_SH), *args], capture_output=True, text=True, timeout=30, check=False
    )


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


@pytest.fixture
def staged(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    result = run_install("--destdir", str(root))
    assert result.returncode == 0, result.stderr
    return root


def test_install_stages_every_file_with_its_mode(staged: Path) -> None:
    unitdir = staged / "etc/systemd/system"
    for name in UNITS:
        assert mode(unitdir / name) == 0o644, name
        assert (unitdir / name).read_text() == (REPO / "systemd" / name).read_text()
    assert mode(staged / "etc/sysusers.d/relaygate.conf") == 0o644
    assert mode(staged / "etc/tmpfiles.d/relaygate.conf") == 0o644
    assert mode(staged / "etc/relaygate") == 0o750
    assert not (staged / "etc/relaygate/relaygate.toml").exists()
    guide = staged / "opt/relaygate/share/doc/relaygate/install.md"
    assert guide.read_text() == (REPO / "docs/install.md").read_text()
    assert mode(guide) == 0o644
    link = staged / "usr/local/bin/relaygate"
    assert link.is_symlink() and os.readlink(link) == "/opt/relaygate/bin/relaygate"
    # With --destdir nothing is activated: no user database, no state directory on this root.
    assert not (staged / "etc/passwd").exists()
    assert not (staged / "var").exists()


def test_install_follows_prefix_and_is_idempotent(tmp_path: Path) -> None:
    root = tmp_path / "root"
    assert run_install("--destdir", str(root), "--prefix", "/srv/relaygate").returncode == 0
    config = root / "etc/relaygate/relaygate.toml"
    config.write_text('hostname = "mail.example.org"\n')
    (root / "usr/local/bin/relaygate").unlink()
    (root / "usr/local/bin/relaygate").write_text("#!/bin/sh\n")  # the admin's own file
    again = run_install("--destdir", str(root), "--prefix=/srv/relaygate")
    assert again.returncode == 0, again.stderr
    assert "skipped" in again.stdout
    assert config.read_text() == 'hostname = "mail.example.org"\n'
    assert not (root / "usr/local/bin/relaygate").is_symlink()
    for name in SERVICES:
        text = (root / "etc/systemd/system" / name).read_text()
        assert (
            "ExecStart=/srv/relaygate/bin/relaygate --config /etc/relaygate/relaygate.toml serve"
            in text
        )
        assert "/opt/relaygate" not in text
    assert not list((root / "etc/systemd/system").glob("*.tmp"))


@pytest.mark.parametrize(
    "args",
    [("--prefix", "relative/path"), ("--prefix", "/opt/x;rm -rf"), ("--frobnicate",)],
)
def test_install_refuses_bad_arguments(tmp_path: Path, args: tuple[str, ...]) -> None:
    result = run_install("--destdir", str(tmp_path / "root"), *args)
    assert result.returncode == 2
    assert not (tmp_path / "root").exists()


@pytest.fixture
def verify_root(staged: Path) -> Path:
    """The staged tree plus the host's stock units and a stand-in relaygate executable."""
    if HOST_UNIT_DIR is None:
        pytest.skip("no systemd unit directory on this host (Debian package: systemd)")
    shutil.copytree(HOST_UNIT_DIR, staged / "usr/lib/systemd/system", symlinks=True)
    exe = staged / "opt/relaygate/bin/relaygate"
    exe.parent.mkdir(parents=True)
    exe.write_text("#!/bin/sh\nexit 0\n")
    exe.chmod(0o755)
    return staged


def analyze_verify(root: Path, *units: str) -> subprocess.CompletedProcess[str]:
    tool = need("systemd-analyze")
    return subprocess.run(
        [tool, "verify", "--man=no", "--generators=no", f"--root={root}", *units],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_systemd_analyze_verify_is_clean(verify_root: Path) -> None:
    result = analyze_verify(verify_root, *UNITS)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "relaygate" not in output, output  # no warning about any of our units


def test_systemd_analyze_verify_catches_mistakes(verify_root: Path) -> None:
    """The check above can fail: a typo'd key and a missing executable are both reported."""
    unit = verify_root / "etc/systemd/system/relaygate-http.service"
    unit.write_text(
        unit.read_text().replace("ProtectHome=yes", "ProtectHome=yes\nProtectHomeX=yes")
    )
    typo = analyze_verify(verify_root, "relaygate-http.service")
    assert "Unknown key 'ProtectHomeX'" in typo.stdout + typo.stderr
    (verify_root / "opt/relaygate/bin/relaygate").unlink()
    missing = analyze_verify(verify_root, "relaygate-smtp.service")
    assert missing.returncode != 0
    assert "is not executable" in missing.stdout + missing.stderr


def test_systemd_analyze_security_exposure_is_low(verify_root: Path) -> None:
    tool = need("systemd-analyze")
    for name in SERVICES:
        result = subprocess.run(
            [tool, "security", "--offline=true", f"--root={verify_root}", "--no-pager", name],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        found = re.search(r"Overall exposure level for \S+: ([0-9.]+)", result.stdout)
        assert found, result.stdout + result.stderr
        # systemd's scale: 0 (locked down) .. 10 (unprotected); "OK" is below 2.0.
        assert float(found.group(1)) < 2.0, (name, found.group(0))


def test_sysusers_and_tmpfiles_create_user_and_directories(staged: Path) -> None:
    sysusers = need("systemd-sysusers")
    tmpfiles = need("systemd-tmpfiles")
    dry = subprocess.run(
        [sysusers, "--dry-run", f"--root={staged}", "relaygate.conf"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert dry.returncode == 0, dry.stderr
    assert "Creating user 'relaygate'" in dry.stdout + dry.stderr
    if os.geteuid() != 0:
        pytest.skip("creating the user and chowning the directories needs root")
    subprocess.run([sysusers, f"--root={staged}", "relaygate.conf"], check=True, timeout=30)
    (entry,) = [
        line.split(":")
        for line in (staged / "etc/passwd").read_text().splitlines()
        if line.startswith("relaygate:")
    ]
    uid, gid = int(entry[2]), int(entry[3])
    assert 0 < uid < 1000  # a system user
    assert entry[5:] == ["/var/lib/relaygate", "/usr/sbin/nologin"]

    subprocess.run(
        [tmpfiles, "--create", f"--root={staged}", "relaygate.conf"], check=True, timeout=30
    )
    state = staged / "var/lib/relaygate"
    assert mode(state) == 0o750
    assert (state.stat().st_uid, state.stat().st_gid) == (uid, gid)
    confdir = staged / "etc/relaygate"
    assert mode(confdir) == 0o750
    assert (confdir.stat().st_uid, confdir.stat().st_gid) == (0, gid)

    # After `relaygate init` wrote the config (here: by hand, too open), tmpfiles tightens it.
    config = confdir / "relaygate.toml"
    config.write_text("state_dir = '/var/lib/relaygate'\n")
    config.chmod(0o644)
    subprocess.run(
        [tmpfiles, "--create", f"--root={staged}", "relaygate.conf"], check=True, timeout=30
    )
    assert mode(config) == 0o640
    assert (config.stat().st_uid, config.stat().st_gid) == (0, gid)
