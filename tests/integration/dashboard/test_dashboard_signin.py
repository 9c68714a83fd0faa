"""Signing in to the dashboard (API.md §12): the pinned form, 303 to the login page without a
session, the session cookie's flags, CSRF on every form, sessions ending after 12 h idle or
7 days, sign out, change password, disabled users, slowed failed sign-ins, TOTP, the security
headers, allow_from and trusted proxies."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from relaygate.clock import FakeClock
from relaygate.dashboard import totp
from relaygate.dashboard.throttle import SignInLimits
from relaygate.dashboard.web import ABSOLUTE_SECONDS, IDLE_SECONDS, session_id
from relaygate.store.models import Account, User
from relaygate.store.sqlite import SqliteStore as Store

from ...conftest import make_settings  # type: ignore[import-not-found]
from .conftest import PASSWORD, csrf_of, make_app, page_csrf, sign_in


def test_login_form_is_the_pinned_one(client: TestClient) -> None:
    r = client.get("/dashboard/login")
    assert r.status_code == 200
    html = r.text
    assert re.search(r'<input[^>]+name="email"', html)
    assert re.search(r'<input[^>]+name="password"[^>]+type="password"', html)
    assert re.search(r"<button[^>]*>Sign in</button>", html)


@pytest.mark.parametrize(
    "path", ["/dashboard", "/dashboard/keys", "/dashboard/password", "/dashboard/nope"]
)
def test_every_page_without_a_session_is_a_303_to_login(client: TestClient, path: str) -> None:
    r = client.get(path + "?x=1")
    assert r.status_code == 303
    assert r.headers["location"] == f"/dashboard/login?next={path}%3Fx%3D1"


def test_sign_in_sets_a_safe_cookie_and_goes_next(
    client: TestClient, ann: User, store: Store
) -> None:
    page = client.get("/dashboard/login?next=/dashboard/keys")
    r = client.post(
        "/dashboard/login",
        data={
            "email": "ANN@acme.test",
            "password": PASSWORD,
            "csrf": csrf_of(page.text),
            "next": "/dashboard/keys",
        },
    )
    assert r.status_code == 303 and r.headers["location"] == "/dashboard/keys"
    cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith("rg_session="))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/dashboard" in cookie
    assert "Secure" not in cookie  # public_url is http here
    token = cookie.split(";")[0].split("=", 1)[1]
    assert store.sessions.get(token) is None  # the store keeps only its hash
    assert store.sessions.get(session_id(token)) is not None
    home = client.get("/dashboard")
    assert home.status_code == 200 and "acme" in home.text and "Sign out" in home.text
    assert store.users.get(ann.id).last_sign_in_at is not None  # type: ignore[union-attr]


@pytest.mark.parametrize("target", ["https://evil.test/", "//evil.test", "/elsewhere", "/\\evil"])
def test_next_never_leaves_the_dashboard(client: TestClient, ann: User, target: str) -> None:
    r = sign_in(client, ann.email, next=target)
    assert r.status_code == 303 and r.headers["location"] == "/dashboard"


def test_secure_cookie_when_public_url_is_https(
    store: Store, tmp_path: Path, clock: FakeClock, ann: User
) -> None:
    settings = make_settings(tmp_path, http={"public_url": "https://mail.example.com"})
    with TestClient(
        make_app(store, settings, clock), base_url="https://testserver", follow_redirects=False
    ) as c:
        r = sign_in(c, ann.email)
        cookie = next(x for x in r.headers.get_list("set-cookie") if x.startswith("rg_session="))
        assert "Secure" in cookie


def test_wrong_password_unknown_user_and_disabled_user_look_the_same(
    client: TestClient, ann: User, make_user: Callable[..., User], acme: Account, store: Store
) -> None:
    gone = make_user("gone@acme.test", account=acme)
    store.users.disable(gone.id)
    for email, password in [
        (ann.email, "wrong password!"),
        ("nobody@acme.test", PASSWORD),
        (gone.email, PASSWORD),
    ]:
        r = sign_in(client, email, password)
        assert r.status_code == 400
        assert "Wrong e-mail address or password." in r.text
        assert "rg_session=" not in r.headers.get("set-cookie", "")


def test_post_without_csrf_is_403_and_changes_nothing(
    signed_in: TestClient, ann: User, store: Store
) -> None:
    r = signed_in.post(
        "/dashboard/password",
        data={"current_password": PASSWORD, "new_password": "x" * 12, "confirm_password": "x" * 12},
    )
    assert r.status_code == 403
    r = signed_in.post("/dashboard/logout", data={"csrf": "forged"})
    assert r.status_code == 403
    assert signed_in.get("/dashboard").status_code == 200  # still signed in
    fresh = TestClient(signed_in.app, follow_redirects=False)
    r = fresh.post("/dashboard/login", data={"email": ann.email, "password": PASSWORD})
    assert r.status_code == 403


def test_sign_out_ends_the_session_server_side(signed_in: TestClient, store: Store) -> None:
    token = signed_in.cookies.get("rg_session")
    assert token
    r = signed_in.post("/dashboard/logout", data={"csrf": page_csrf(signed_in)})
    assert r.status_code == 303 and r.headers["location"] == "/dashboard/login?notice=signed-out"
    assert store.sessions.get(session_id(token)) is None
    signed_in.cookies.set("rg_session", token, path="/dashboard")  # a copied cookie is useless
    assert signed_in.get("/dashboard").status_code == 303


def test_sessions_end_after_12_hours_idle(signed_in: TestClient, clock: FakeClock) -> None:
    clock.advance(IDLE_SECONDS - 10)
    assert signed_in.get("/dashboard").status_code == 200  # seen: idle restarts
    clock.advance(IDLE_SECONDS - 10)
    assert signed_in.get("/dashboard").status_code == 200
    clock.advance(IDLE_SECONDS + 1)
    assert signed_in.get("/dashboard").status_code == 303


def test_sessions_end_7_days_after_sign_in_however_busy(
    signed_in: TestClient, clock: FakeClock
) -> None:
    for _ in range(int(ABSOLUTE_SECONDS // (IDLE_SECONDS - 60))):
        clock.advance(IDLE_SECONDS - 60)
        if clock.now() - 1_790_000_000.0 > ABSOLUTE_SECONDS:
            break
        assert signed_in.get("/dashboard").status_code == 200
    clock.advance(IDLE_SECONDS - 60)
    assert signed_in.get("/dashboard").status_code == 303


def test_disabling_a_user_ends_their_session(
    signed_in: TestClient, ann: User, store: Store
) -> None:
    store.users.disable(ann.id)
    assert signed_in.get("/dashboard").status_code == 303


def test_change_password_signs_out_the_other_sessions(
    signed_in: TestClient, app: Starlette, ann: User
) -> None:
    with TestClient(app, follow_redirects=False) as elsewhere:
        assert sign_in(elsewhere, ann.email).status_code == 303
        csrf = page_csrf(signed_in, "/dashboard/password")
        bad = signed_in.post(
            "/dashboard/password",
            data={
                "csrf": csrf,
                "current_password": "nope",
                "new_password": "n" * 12,
                "confirm_password": "n" * 12,
            },
        )
        assert bad.status_code == 400 and "current password is not right" in bad.text
        short = signed_in.post(
            "/dashboard/password",
            data={
                "csrf": csrf,
                "current_password": PASSWORD,
                "new_password": "short",
                "confirm_password": "short",
            },
        )
        assert short.status_code == 400 and "at least 10 characters" in short.text
        r = signed_in.post(
            "/dashboard/password",
            data={
                "csrf": csrf,
                "current_password": PASSWORD,
                "new_password": "a new long one",
                "confirm_password": "a new long one",
            },
        )
        assert r.status_code == 303
        assert signed_in.get("/dashboard").status_code == 200
        assert elsewhere.get("/dashboard").status_code == 303
        signed_in.cookies.clear()
        assert sign_in(signed_in, ann.email).status_code == 400
        assert sign_in(signed_in, ann.email, "a new long one").status_code == 303


def test_failed_sign_ins_are_slowed_per_user(
    client: TestClient, ann: User, clock: FakeClock
) -> None:
    for _ in range(5):  # five are free
        assert sign_in(client, ann.email, "wrong password").status_code == 400
    r = sign_in(client, ann.email)  # then even the right password waits (unchecked)
    assert r.status_code == 429 and r.headers["retry-after"] == "1"
    assert "Too many failed sign-ins" in r.text
    clock.advance(1)
    assert sign_in(client, ann.email, "wrong password").status_code == 400
    assert sign_in(client, ann.email).headers["retry-after"] == "2"  # doubling
    clock.advance(2)
    assert sign_in(client, ann.email).status_code == 303
    client.cookies.clear()
    for _ in range(5):  # a success cleared the user's count
        assert sign_in(client, ann.email, "wrong password").status_code == 400


def test_failed_sign_ins_are_slowed_per_client_address(
    client: TestClient, ann: User, clock: FakeClock
) -> None:
    for i in range(20):  # twenty different users from one address (the default limit)
        assert sign_in(client, f"guess{i}@acme.test", "x" * 12).status_code == 400
    assert sign_in(client, ann.email).status_code == 429  # this address must wait
    clock.advance(1)
    assert sign_in(client, ann.email).status_code == 303


def test_forwarded_for_counts_only_from_a_trusted_proxy(
    store: Store, tmp_path: Path, clock: FakeClock, ann: User
) -> None:
    settings = make_settings(tmp_path, http={"trusted_proxies": ["127.0.0.1"]})
    app = make_app(store, settings, clock, SignInLimits(client_free=3))
    proxied = TestClient(app, follow_redirects=False, client=("127.0.0.1", 5000))
    stranger = TestClient(app, follow_redirects=False, client=("192.0.2.7", 5000))
    for i in range(4):
        h = {"X-Forwarded-For": "198.51.100.1"}
        page = proxied.get("/dashboard/login")
        proxied.post(
            "/dashboard/login",
            data={"email": f"g{i}@x.test", "password": "x" * 12, "csrf": csrf_of(page.text)},
            headers=h,
        )
    # another client behind the same proxy is not slowed by 198.51.100.1's guesses
    page = proxied.get("/dashboard/login")
    r = proxied.post(
        "/dashboard/login",
        data={"email": ann.email, "password": PASSWORD, "csrf": csrf_of(page.text)},
        headers={"X-Forwarded-For": "198.51.100.2"},
    )
    assert r.status_code == 303
    # a stranger's forged header is ignored: its own address is counted
    for i in range(4):
        page = stranger.get("/dashboard/login")
        stranger.post(
            "/dashboard/login",
            data={"email": f"h{i}@x.test", "password": "x" * 12, "csrf": csrf_of(page.text)},
            headers={"X-Forwarded-For": f"203.0.113.{i}"},
        )
    page = stranger.get("/dashboard/login")
    r = stranger.post(
        "/dashboard/login",
        data={"email": ann.email, "password": PASSWORD, "csrf": csrf_of(page.text)},
        headers={"X-Forwarded-For": "203.0.113.200"},
    )
    assert r.status_code == 429


def test_allow_from_hides_the_dashboard_from_everyone_else(
    store: Store, tmp_path: Path, clock: FakeClock, ann: User
) -> None:
    settings = make_settings(tmp_path, dashboard={"allow_from": ["10.0.0.0/8"]})
    app = make_app(store, settings, clock)
    inside = TestClient(app, follow_redirects=False, client=("10.1.2.3", 5000))
    outside = TestClient(app, follow_redirects=False, client=("192.0.2.7", 5000))
    assert inside.get("/dashboard/login").status_code == 200
    assert outside.get("/dashboard/login").status_code == 404
    assert outside.get("/dashboard").status_code == 404
    assert outside.post("/dashboard/login", data={}).status_code == 404


def test_security_headers_on_every_answer(client: TestClient, ann: User) -> None:
    for r in (client.get("/dashboard/login"), sign_in(client, ann.email), client.get("/dashboard")):
        csp = r.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp
        assert r.headers["x-frame-options"] == "DENY"
    html = client.get("/dashboard").text
    scripts = re.findall(r"<script[^>]*>(.*?)</script>", html, re.S)
    assert scripts and all(s.strip() == "" for s in scripts)  # no inline script
    assert not re.search(r"\son[a-z]+=", html)  # no inline handlers
    css = client.get("/dashboard/static/dashboard.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")


def test_totp_second_factor(
    signed_in: TestClient, app: Starlette, ann: User, store: Store, clock: FakeClock
) -> None:
    page = signed_in.get("/dashboard/two-factor")
    secret = re.search(r'name="secret" value="([A-Z2-7]+)"', page.text).group(1)  # type: ignore[union-attr]
    csrf = csrf_of(page.text)
    wrong = signed_in.post(
        "/dashboard/two-factor",
        data={
            "csrf": csrf,
            "action": "on",
            "secret": secret,
            "code": "000000",
            "password": PASSWORD,
        },
    )
    assert wrong.status_code == 400 and store.users.get(ann.id).totp_secret == ""  # type: ignore[union-attr]
    r = signed_in.post(
        "/dashboard/two-factor",
        data={
            "csrf": csrf,
            "action": "on",
            "secret": secret,
            "code": totp.code_at(secret, clock.now()),
            "password": PASSWORD,
        },
    )
    assert r.status_code == 303 and store.users.get(ann.id).totp_secret == secret  # type: ignore[union-attr]
    clock.advance(60)
    with TestClient(app, follow_redirects=False) as c:
        r = sign_in(c, ann.email)
        assert r.status_code == 303 and r.headers["location"].startswith("/dashboard/login/code")
        assert c.get("/dashboard").status_code == 303  # not signed in yet
        code_page = c.get(r.headers["location"])
        assert code_page.status_code == 200
        bad = c.post(
            "/dashboard/login/code", data={"csrf": csrf_of(code_page.text), "code": "123456"}
        )
        assert bad.status_code in (400, 200) and "not right" in bad.text
        good = c.post(
            "/dashboard/login/code",
            data={"csrf": csrf_of(code_page.text), "code": totp.code_at(secret, clock.now())},
        )
        assert good.status_code == 303 and good.headers["location"] == "/dashboard"
        assert c.get("/dashboard").status_code == 200
    with TestClient(app, follow_redirects=False) as c:  # the same code does not sign in twice
        r = sign_in(c, ann.email)
        page = c.get(r.headers["location"])
        again = c.post(
            "/dashboard/login/code",
            data={"csrf": csrf_of(page.text), "code": totp.code_at(secret, clock.now())},
        )
        assert again.status_code == 400


def test_operator_switches_accounts(
    client: TestClient, root: User, acme: Account, other: Account
) -> None:
    assert sign_in(client, root.email).status_code == 303
    home = client.get("/dashboard")
    assert "<h1>acme</h1>" in home.text and "operator" in home.text
    r = client.post(
        "/dashboard/switch",
        data={"csrf": csrf_of(home.text), "account": str(other.id), "next": "/dashboard"},
    )
    assert r.status_code == 303
    assert "<h1>other</h1>" in client.get("/dashboard").text
    r = client.post("/dashboard/switch", data={"csrf": csrf_of(home.text), "account": "99999"})
    assert r.status_code == 404


def test_an_account_user_cannot_switch(signed_in: TestClient, other: Account) -> None:
    r = signed_in.post(
        "/dashboard/switch", data={"csrf": page_csrf(signed_in), "account": str(other.id)}
    )
    assert r.status_code == 404
    assert "<h1>acme</h1>" in signed_in.get("/dashboard").text
