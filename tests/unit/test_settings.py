from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relaygate import settings as settings_mod
from relaygate.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def test_every_problem_is_listed_at_once(tmp_path: Path) -> None:
    cfg = tmp_path / "relaygate.toml"
    cfg.write_text(
        'state_dir = "x"\nhostnme = "typo"\n'
        '[http]\nlisten = "nohostport"\n'
        '[delivery]\nmode = "carrier-pigeon"\nmx_port = 70000\n'
        '[dns]\nnameservers = ["not-an-ip"]\n'
        '[webhooks]\nallow_private = "yes"\n'
    )
    with pytest.raises(ConfigError) as info:
        settings_mod.load(cfg)
    problems = "\n".join(info.value.problems)
    assert "hostnme: unknown key" in problems
    assert "http.listen" in problems
    assert "delivery.mode: must be one of mx, smarthost, capture" in problems
    assert "delivery.mx_port" in problems
    assert "dns.nameservers" in problems
    assert "webhooks.allow_private: expected bool" in problems
    assert len(info.value.problems) == 6


def test_not_toml_is_one_clear_error(tmp_path: Path) -> None:
    cfg = tmp_path / "relaygate.toml"
    cfg.write_text("state_dir = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        settings_mod.load(cfg)


def test_smarthost_mode_needs_a_smarthost(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"delivery\.smarthost: required"):
        settings_mod.from_mapping({"delivery": {"mode": "smarthost"}}, path=tmp_path / "c.toml")


def test_defaults_and_relative_paths(tmp_path: Path) -> None:
    s = settings_mod.from_mapping(
        {"state_dir": "var", "dns": {"nameservers": ["127.0.0.1:5353", "::1"]}},
        path=tmp_path / "c.toml",
    )
    assert s.state_dir == tmp_path / "var"
    assert s.database == tmp_path / "var" / "relaygate.sqlite3"
    assert s.delivery.mode == "mx" and s.delivery.mx_port == 25
    assert s.dns.nameservers == (("127.0.0.1", 5353), ("::1", 53))
    assert s.http.public_url == "http://127.0.0.1:8025"
    assert s.return_path_domain == "bounces.localhost"


def test_example_config_is_valid_and_documents_every_key() -> None:
    example = REPO / "config" / "relaygate.example.toml"
    s = settings_mod.load(example)
    assert s.hostname == "mail.example.com"
    text = example.read_text()
    import dataclasses

    for section, cls in (
        ("http", settings_mod.HttpSettings),
        ("smtp", settings_mod.SmtpSettings),
        ("delivery", settings_mod.DeliverySettings),
        ("dns", settings_mod.DnsSettings),
        ("bounces", settings_mod.BounceSettings),
        ("webhooks", settings_mod.WebhookSettings),
        ("domains", settings_mod.DomainSettings),
        ("metrics", settings_mod.MetricsSettings),
        ("dashboard", settings_mod.DashboardSettings),
    ):
        body = text.split(f"[{section}]", 1)[1].split("\n[", 1)[0]
        for f in dataclasses.fields(cls):
            assert re.search(rf"^{f.name} = ", body, re.M), f"{section}.{f.name} is not documented"
    for key in ("state_dir", "hostname", "secret_key_file", "log_level", "log_json"):
        assert re.search(rf"^{key} = ", text, re.M)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("127.0.0.1:25", ("127.0.0.1", 25)),
        ("[::1]:2525", ("::1", 2525)),
        ("mx.example.com:587", ("mx.example.com", 587)),
    ],
)
def test_parse_hostport(value: str, expected: tuple[str, int]) -> None:
    assert settings_mod.parse_hostport(value) == expected


@pytest.mark.parametrize("value", ["", ":25", "host", "host:99999", "host:x"])
def test_parse_hostport_rejects(value: str) -> None:
    with pytest.raises(ValueError):
        settings_mod.parse_hostport(value)


def test_connection_cache_seconds(tmp_path: Path) -> None:
    default = settings_mod.from_mapping({}, path=tmp_path / "c.toml")
    assert default.delivery.connection_cache_seconds == 2.0
    off = settings_mod.from_mapping(
        {"delivery": {"connection_cache_seconds": 0}}, path=tmp_path / "c.toml"
    )
    assert off.delivery.connection_cache_seconds == 0.0
    with pytest.raises(ConfigError, match=r"delivery\.connection_cache_seconds: must be zero or"):
        settings_mod.from_mapping(
            {"delivery": {"connection_cache_seconds": -1}}, path=tmp_path / "c.toml"
        )


@settings(max_examples=200, deadline=None)
@given(
    st.binary(max_size=400)
    | st.text(max_size=400).map(str.encode)
    | st.lists(
        st.sampled_from(
            [
                "state_dir = ",
                "[smtp]\n",
                "[http]\n",
                "listen = ",
                "tls_cert = ",
                "'",
                '"',
                "[",
                "]",
                "{",
                "}",
                "=",
                "\n",
                "\\u0000",
                "x",
                "1",
                "true",
                ",",
                "[[a]]\n",
                "a.b.c = 1\n",
            ]
        ),
        max_size=80,
    ).map(lambda parts: "".join(parts).encode())
)
def test_any_file_is_settings_or_a_config_error(
    tmp_path_factory: pytest.TempPathFactory, blob: bytes
) -> None:
    path = tmp_path_factory.mktemp("cfg") / "relaygate.toml"
    path.write_bytes(blob)
    try:
        settings_mod.load(path)
    except ConfigError as exc:
        assert exc.problems and all(isinstance(p, str) and p for p in exc.problems)


def test_inbound_report_caps_and_retention(tmp_path: Path) -> None:
    default = settings_mod.from_mapping({}, path=tmp_path / "c.toml").bounces
    assert (default.max_report_bytes, default.reports_per_minute) == (2 * 1024 * 1024, 60)
    assert default.report_retention == 7 * 86400.0
    with pytest.raises(ConfigError) as info:
        settings_mod.from_mapping(
            {"bounces": {"max_report_bytes": 0, "reports_per_minute": -1, "report_retention": "x"}},
            path=tmp_path / "c.toml",
        )
    problems = "\n".join(info.value.problems)
    for key in ("max_report_bytes", "reports_per_minute", "report_retention"):
        assert f"bounces.{key}" in problems


def test_dashboard_and_trusted_proxies(tmp_path: Path) -> None:
    base = {"state_dir": str(tmp_path)}
    s = settings_mod.from_mapping(base, path=tmp_path / "r.toml")
    assert s.dashboard.enabled is True and s.dashboard.allow_from == ()
    assert s.http.trusted_proxies == ()
    s = settings_mod.from_mapping(
        {
            **base,
            "http": {"trusted_proxies": ["127.0.0.1", "10.0.0.0/8"]},
            "dashboard": {"enabled": False, "allow_from": ["::1"], "operator_contact": "ops@x"},
        },
        path=tmp_path / "r.toml",
    )
    assert s.http.trusted_proxies == ("127.0.0.1", "10.0.0.0/8")
    assert (s.dashboard.enabled, s.dashboard.allow_from) == (False, ("::1",))
    assert s.dashboard.operator_contact == "ops@x"
    with pytest.raises(ConfigError) as caught:
        settings_mod.from_mapping(
            {
                **base,
                "http": {"trusted_proxies": ["nonsense"]},
                "dashboard": {"allow_from": "10.0.0.0/8", "colour": "blue"},
            },
            path=tmp_path / "r.toml",
        )
    problems = " | ".join(caught.value.problems)
    assert "http.trusted_proxies: 'nonsense' is not a CIDR network" in problems
    assert "dashboard.allow_from: expected list" in problems
    assert "dashboard.colour: unknown key" in problems
