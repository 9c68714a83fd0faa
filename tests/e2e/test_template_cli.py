"""`relaygate template …` through the command line."""

from __future__ import annotations

from pathlib import Path

from relaygate.testing.process import RelaygateProcess


def test_template_commands(tmp_path: Path) -> None:
    rg = RelaygateProcess(tmp_path)
    rg.init()
    rg.cli("account", "create", "acme", "--plan", "paid")
    slugs = [t["slug"] for t in rg.cli("template", "list")]
    assert {"welcome", "verify-email", "password-reset", "receipt", "notification"} <= set(slugs)
    assert (
        rg.cli("template", "clone", "welcome", "--account", "1", "--as", "hello")["slug"] == "hello"
    )
    owners = {t["slug"]: t["owner"] for t in rg.cli("template", "list", "--account", "1")}
    assert owners["hello"] == "account 1" and owners["welcome"] == "system"
    html = tmp_path / "t.html"
    html.write_text("<p>{{ broken </p>")
    err = rg.cli(
        "template",
        "create",
        "bad",
        "--account",
        "1",
        "--subject",
        "s",
        "--html",
        str(html),
        check=False,
    )
    assert "template 'bad'" in err["error"]
    html.write_text("<p>Hello {{ name }}</p>")
    rg.cli(
        "template",
        "create",
        "good",
        "--account",
        "1",
        "--subject",
        "Hi {{ name }}",
        "--html",
        str(html),
    )
    shown = rg.cli("template", "show", "good", "--account", "1")
    assert shown["subject"] == "Hi {{ name }}" and shown["owner"] == "account 1"
    assert rg.cli("template", "delete", "good", "--account", "1")["deleted"] is True
