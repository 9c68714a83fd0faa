"""contrib/: the Prometheus alerting rules and the Grafana dashboard are valid (promtool checks
and unit-tests the rules, and parses every dashboard query), and every metric they name is one a
running relaygate exposes on /metrics."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from relaygate.testing.process import RelaygateProcess

from ...conftest import require_tool  # type: ignore[import-not-found]

REPO = Path(__file__).resolve().parents[3]
RULES = REPO / "contrib" / "prometheus" / "alerts.yml"
DASHBOARD = REPO / "contrib" / "grafana" / "relaygate.json"
RULE_TESTS = Path(__file__).parent / "data" / "alerts_test.yml"
METRIC = re.compile(r"\b((?:relaygate|process)_[a-z_]+)\b")


def promtool() -> str:
    return require_tool("promtool", "RELAYGATE_REQUIRE_PROMTOOL", package="prometheus")


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, cwd=cwd)


def dashboard_queries() -> list[str]:
    board = json.loads(DASHBOARD.read_text())
    queries = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    assert len(queries) > 15
    return queries


def test_rules_pass_promtool_check_and_their_unit_tests() -> None:
    tool = promtool()
    checked = run(tool, "check", "rules", str(RULES))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 7 rules found" in checked.stdout
    tested = run(tool, "test", "rules", RULE_TESTS.name, cwd=RULE_TESTS.parent)
    assert tested.returncode == 0 and "SUCCESS" in tested.stdout, tested.stdout + tested.stderr


def test_every_dashboard_query_parses(tmp_path: Path) -> None:
    tool = promtool()
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {
                        "record": f"dashboard:query_{i}",
                        "expr": q.replace("$__rate_interval", "5m").replace("$job", ".*"),
                    }
                    for i, q in enumerate(dashboard_queries())
                ],
            }
        ]
    }
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(json.dumps(rules))  # JSON is YAML
    checked = run(tool, "check", "rules", str(path))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_dashboard_is_importable() -> None:
    board = json.loads(DASHBOARD.read_text())
    assert board["uid"] == "relaygate" and board["title"] == "relaygate"
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    titles = " ".join(p["title"].lower() for p in board["panels"])
    for subject in ("accepted", "delivered", "deferred", "bounced by reason", "queue by state"):
        assert subject in titles, subject
    for subject in ("oldest", "webhook", "latency"):
        assert subject in titles, subject
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            assert target["datasource"]["uid"] == "${datasource}"
            assert 'job=~"$job"' in target["expr"]


def _series_names(body: str) -> set[str]:
    """Every series name the exposition offers, samples or not (a counter ``x`` is ``x_total``)."""
    names: set[str] = set()
    for family in text_string_to_metric_families(body):
        if family.type == "counter":
            names.add(family.name + "_total")
        elif family.type == "histogram":
            names |= {family.name + s for s in ("_bucket", "_sum", "_count")}
        elif family.type == "info":
            names.add(family.name + "_info")
        else:
            names.add(family.name)
        names |= {s.name for s in family.samples}
    return names


def test_every_metric_named_in_contrib_is_exposed(tmp_path: Path) -> None:
    named = set(METRIC.findall(RULES.read_text()))
    for query in dashboard_queries():
        named |= set(METRIC.findall(query))
    assert {"relaygate_recipients_bounced_total", "relaygate_queue_oldest_age_seconds"} <= named
    with RelaygateProcess(tmp_path) as rg:
        body = httpx.get(rg.http_url + "/metrics", timeout=10).text
    exposed = _series_names(body)
    assert named - exposed == set()
