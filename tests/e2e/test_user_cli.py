"""``relaygate user`` as an operator uses it, and a real ``serve``: the users it makes sign in to
the dashboard over HTTP; ``user disable`` signs them out at once; ``reset-password`` too."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx

from relaygate.testing.process import RelaygateProcess


def _run(rg: RelaygateProcess, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "relaygate", "--config", str(rg.config), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _sign_in(client: httpx.Client, email: str, password: str) -> httpx.Response:
    page = client.get("/dashboard/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    return client.post(
        "/dashboard/login", data={"email": email, "password": password, "csrf": csrf}
    )


def test_user_commands_and_signing_in_to_a_running_server(tmp_path: Path) -> None:
    rg = RelaygateProcess(tmp_path)
    rg.init()
    rg.cli("account", "create", "acme", "--plan", "paid")
    secret = tmp_path / "pw"
    secret.write_text("operator password 1\n")
    op = rg.cli("user", "create", "Root@Ops.Test", "--operator", "--password-file", str(secret))
    assert op["email"] == "root@ops.test" and op["operator"] is True and op["account_id"] is None
    assert "password" not in str(op)
    # from standard input (a script), the account by name
    made = _run(
        rg, "user", "create", "ann@acme.test", "--account", "acme", stdin="ann's password\n"
    )
    assert made.returncode == 0 and "created (user of account 1)" in made.stdout
    # refusals: one line, nothing made
    short = _run(rg, "user", "create", "bob@acme.test", "--account", "1", stdin="short\n")
    assert short.returncode == 1
    assert short.stderr.strip() == (
        "relaygate: a password needs at least 10 characters; nothing was changed"
    )
    dup = _run(rg, "user", "create", "ANN@acme.test", "--account", "1", stdin="long enough pw\n")
    assert dup.returncode == 1 and "exists already" in dup.stderr and "Traceback" not in dup.stderr
    both = _run(rg, "user", "create", "c@acme.test", "--account", "1", "--operator")
    assert both.returncode == 2 and "not allowed with argument" in both.stderr
    nobody = _run(
        rg, "user", "create", "c@acme.test", "--account", "nope", stdin="long enough pw\n"
    )
    assert nobody.returncode == 1 and "no account named 'nope'" in nobody.stderr
    listed = rg.cli("user", "list")
    assert [(u["email"], u["operator"], u["account_id"]) for u in listed] == [
        ("root@ops.test", True, None),
        ("ann@acme.test", False, 1),
    ]
    assert rg.cli("user", "list", "--account", "acme") == [listed[1]]
    table = _run(rg, "user", "list").stdout.splitlines()
    assert table[0].split() == ["ID", "EMAIL", "ROLE", "2FA", "DISABLED", "LAST", "SIGN-IN"]

    with rg, httpx.Client(base_url=rg.http_url, follow_redirects=False) as ann:
        assert _sign_in(ann, "ann@acme.test", "ann's password").status_code == 303
        home = ann.get("/dashboard")
        assert home.status_code == 200 and "acme" in home.text
        assert rg.cli("user", "disable", "ann@acme.test")["changed"] is True
        assert ann.get("/dashboard").status_code == 303  # signed out at once
        assert _sign_in(ann, "ann@acme.test", "ann's password").status_code == 400
        rg.cli("user", "enable", "2")
        assert _sign_in(ann, "ann@acme.test", "ann's password").status_code == 303
        reset = _run(
            rg, "--json", "user", "reset-password", "ann@acme.test", stdin="a brand new one\n"
        )
        assert reset.returncode == 0 and '"sessions_ended": 1' in reset.stdout
        assert ann.get("/dashboard").status_code == 303
        assert _sign_in(ann, "ann@acme.test", "a brand new one").status_code == 303
    assert rg.cli("user", "list")[1]["last_sign_in_at"].endswith("Z")
