"""The systemd files read as text: hardening present, roles real, target and conflicts consistent."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

SYSTEMD = Path(__file__).resolve().parents[3] / "systemd"
ROLES = ("http", "smtp", "relay", "webhooks")  # `relaygate serve --role` choices (API.md §10)
ROLE_UNITS = tuple(f"relaygate-{r}.service" for r in ROLES)
SERVICES = ("relaygate.service", *ROLE_UNITS)
BINDS_LOW_PORTS = {"relaygate.service", "relaygate-smtp.service"}

Unit = dict[str, dict[str, list[str]]]


def parse_unit(path: Path) -> Unit:
    """A small systemd unit parser: sections → key → every value given (repeats kept)."""
    unit: Unit = {}
    section: dict[str, list[str]] | None = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = unit.setdefault(line[1:-1], {})
            continue
        assert section is not None, f"{path.name}: key outside a section: {line}"
        assert not line.endswith("\\"), f"{path.name}: continuation lines not expected"
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}: not key=value: {line}"
        section.setdefault(key.strip(), []).append(value.strip())
    return unit


def one(unit: Unit, section: str, key: str) -> str:
    values = unit.get(section, {}).get(key)
    assert values, f"{key}= missing in [{section}]"
    return values[-1]


HARDENING = {
    "Type": "notify",
    "NotifyAccess": "main",
    "WatchdogSec": "30",
    "Restart": "on-failure",
    "KillSignal": "SIGTERM",
    "User": "relaygate",
    "Group": "relaygate",
    "StateDirectory": "relaygate",
    "StateDirectoryMode": "0750",
    "ConfigurationDirectory": "relaygate",
    "UMask": "0077",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "NoNewPrivileges": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectKernelLogs": "yes",
    "ProtectControlGroups": "yes",
    "RestrictNamespaces": "yes",
    "LockPersonality": "yes",
    "MemoryDenyWriteExecute": "yes",
    "RestrictRealtime": "yes",
    "RestrictSUIDSGID": "yes",
    "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
    "SystemCallArchitectures": "native",
}


@pytest.mark.parametrize("name", SERVICES)
def test_service_hardening(name: str) -> None:
    unit = parse_unit(SYSTEMD / name)
    for key, expected in HARDENING.items():
        assert one(unit, "Service", key) == expected, f"{name}: {key}"
    service = unit["Service"]
    assert "@system-service" in service["SystemCallFilter"]
    assert "DynamicUser" not in service
    assert int(one(unit, "Service", "LimitNOFILE")) >= 65536
    assert int(one(unit, "Service", "TimeoutStopSec")) >= 60  # room to drain
    if name in BINDS_LOW_PORTS:
        assert one(unit, "Service", "CapabilityBoundingSet") == "CAP_NET_BIND_SERVICE"
        assert one(unit, "Service", "AmbientCapabilities") == "CAP_NET_BIND_SERVICE"
    else:
        assert one(unit, "Service", "CapabilityBoundingSet") == ""
        assert service.get("AmbientCapabilities", [""])[-1] == ""


@pytest.mark.parametrize("name", SERVICES)
def test_execstart_names_a_real_role(name: str) -> None:
    argv = shlex.split(one(parse_unit(SYSTEMD / name), "Service", "ExecStart"))
    assert argv[:4] == [
        "/opt/relaygate/bin/relaygate",
        "--config",
        "/etc/relaygate/relaygate.toml",
        "serve",
    ]
    rest = argv[4:]
    if name == "relaygate.service":
        assert rest == []  # all roles in one process
    else:
        assert rest[0] == "--role" and rest[1] in ROLES and len(rest) == 2
        assert name == f"relaygate-{rest[1]}.service"


def test_target_splits_and_conflicts_with_all_in_one() -> None:
    target = parse_unit(SYSTEMD / "relaygate.target")
    assert sorted(one(target, "Unit", "Wants").split()) == sorted(ROLE_UNITS)
    assert one(target, "Unit", "Conflicts") == "relaygate.service"
    assert one(target, "Install", "WantedBy") == "multi-user.target"
    allinone = parse_unit(SYSTEMD / "relaygate.service")
    assert set(one(allinone, "Unit", "Conflicts").split()) == {"relaygate.target", *ROLE_UNITS}
    assert one(allinone, "Install", "WantedBy") == "multi-user.target"
    for name in ROLE_UNITS:
        unit = parse_unit(SYSTEMD / name)
        assert one(unit, "Unit", "PartOf") == "relaygate.target"
        assert "relaygate.service" in one(unit, "Unit", "Conflicts").split()
        assert one(unit, "Install", "WantedBy") == "relaygate.target"


def test_every_unit_file_is_covered() -> None:
    on_disk = {p.name for p in SYSTEMD.glob("*.service")} | {
        p.name for p in SYSTEMD.glob("*.target")
    }
    assert on_disk == {*SERVICES, "relaygate.target"}


def test_sysusers_declares_the_static_user() -> None:
    lines = [
        shlex.split(line)
        for line in (SYSTEMD / "sysusers.d" / "relaygate.conf").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert lines == [
        [
            "u",
            "relaygate",
            "-",
            "relaygate SMTP relay gateway",
            "/var/lib/relaygate",
            "/usr/sbin/nologin",
        ]
    ]


def test_tmpfiles_lines() -> None:
    rows = [
        line.split()
        for line in (SYSTEMD / "tmpfiles.d" / "relaygate.conf").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert all(len(row) == 7 for row in rows), rows
    by_path = {row[1]: row for row in rows}
    assert by_path["/var/lib/relaygate"][:5] == [
        "d",
        "/var/lib/relaygate",
        "0750",
        "relaygate",
        "relaygate",
    ]
    assert by_path["/etc/relaygate"][:5] == ["d", "/etc/relaygate", "0750", "root", "relaygate"]
    assert by_path["/etc/relaygate/relaygate.toml"][:5] == [
        "z",
        "/etc/relaygate/relaygate.toml",
        "0640",
        "root",
        "relaygate",
    ]
