"""docs/install.md agrees with what is shipped: files, install.sh options, metric names."""

from __future__ import annotations

import re
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from relaygate.metrics import Metrics
from relaygate.store import Store

REPO = Path(__file__).resolve().parents[3]
GUIDE = (REPO / "docs" / "install.md").read_text()


def test_every_metric_in_the_table_is_exposed_and_every_exposed_one_is_documented(
    store: Store,
) -> None:
    documented = {
        name.removesuffix("_total")
        for name in re.findall(r"^\| `(relaygate_[a-z_]+)`", GUIDE, re.M)
    }
    body, _ = Metrics(status=store.status, process=False).render()
    # Families are listed even before their first sample; counters are named without _total.
    exposed = {family.name for family in text_string_to_metric_families(body.decode())}
    assert documented == exposed


def test_install_sh_options_in_the_guide_exist() -> None:
    script = (REPO / "systemd" / "install.sh").read_text()
    options = set(re.findall(r"`(--[a-z-]+)", GUIDE)) - {
        "--config",
        "--now",
        "--state-dir",
        "--hostname",
        "--full",
    }
    assert options >= {"--prefix", "--destdir", "--unitdir", "--no-activate"}
    for option in options:
        assert f"        {option})" in script, option


def test_files_the_guide_installs_by_hand_exist() -> None:
    for name in re.findall(
        r"install -m 0644 ([^/\n]*?/)?(relaygate[^ \n]*\.(?:conf|service|target))", GUIDE
    ):
        folder, file = name
        if "*" in file:
            continue
        assert (REPO / "systemd" / folder / file).is_file(), (folder, file)
    assert "relaygate --config /etc/relaygate/relaygate.toml init" in GUIDE
    assert "systemctl enable --now relaygate.service" in GUIDE
    assert "systemctl enable --now relaygate.target" in GUIDE
    assert "/readyz" in GUIDE
