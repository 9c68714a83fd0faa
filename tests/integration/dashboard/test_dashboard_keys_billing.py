"""The keys page (the pinned form; the secret once, with the SMTP settings; revoke), the
overview (quota, chart, queue, domain warnings), billing (operators change it, account users
are told whom to ask), and the operator's accounts, users and queue pages; each action in the
audit log as ``user:<id>``."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from starlette.testclient import TestClient

from relaygate.clock import FakeClock
from relaygate.store.ids import new_message_id
from relaygate.store.models import Account, NewMessage, NewRecipient, User
from relaygate.store.sqlite import SqliteStore as Store

from ...conftest import make_settings  # type: ignore[import-not-found]
from .conftest import csrf_of, make_app, page_csrf, sign_in


def admit(store: Store, account: Account, *rcpts: str, subject: str = "s") -> str:
    mid = new_message_id()
    store.admission.admit_sync(
        NewMessage(
            id=mid,
            account_id=account.id,
            channel="http",
            from_addr="app@example.com",
            sender_domain="example.com",
            subject=subject,
            header_message_id=f"<{mid}@example.com>",
            tags=("welcome",),
            body=b"Subject: s\r\n\r\nx\r\n",
            recipients=tuple(NewRecipient(address=r, kind="to") for r in rcpts),
            check_suppressions=True,
        )
    )
    return mid


def test_keys_form_is_the_pinned_one(signed_in: TestClient) -> None:
    html = signed_in.get("/dashboard/keys").text
    assert re.search(r'<input[^>]+type="text"[^>]+name="name"', html)
    boxes = re.findall(r'<input type="checkbox" name="scopes" value="([^"]+)"( checked)?>', html)
    assert boxes == [("email:send", " checked"), ("email:read", ""), ("account:admin", "")]
    assert re.search(r"<button[^>]*>Create key</button>", html)
    assert "No keys yet." in html


def test_create_shows_the_secret_once_then_revoke(
    signed_in: TestClient, store: Store, acme: Account, ann: User
) -> None:
    csrf = page_csrf(signed_in, "/dashboard/keys")
    r = signed_in.post(
        "/dashboard/keys",
        data={"csrf": csrf, "name": "web app", "scopes": ["email:send", "email:read"]},
    )
    assert r.status_code == 201
    secret = re.search(r'id="new-secret">(sk_live_\w+)<', r.text).group(1)  # type: ignore[union-attr]
    assert "only this once" in r.text and 'data-copy="#new-secret"' in r.text
    assert "<dt>SMTP user name</dt><dd><code>apikey</code>" in r.text and "2525" in r.text
    found = store.keys.authenticate(secret)
    assert found is not None and found[0].scopes == ("email:read", "email:send")
    assert found[0].name == "web app" and found[1].id == acme.id
    again = signed_in.get("/dashboard/keys").text
    assert secret not in again and found[0].hint in again  # never shown again
    [entry] = store.audit.list(acme.id)
    assert (entry.actor, entry.action, entry.target) == (
        f"user:{ann.id}",
        "key.create",
        found[0].id,
    )
    assert entry.address == "testclient"
    r = signed_in.post(f"/dashboard/keys/{found[0].id}/revoke", data={"csrf": csrf})
    assert r.status_code == 303 and "notice=key-revoked" in r.headers["location"]
    assert store.keys.authenticate(secret) is None
    assert store.audit.list(acme.id)[0].action == "key.revoke"
    assert '<span class="state revoked">revoked</span>' in signed_in.get("/dashboard/keys").text


def test_create_refusals_are_shown_on_the_form(signed_in: TestClient, store: Store) -> None:
    csrf = page_csrf(signed_in, "/dashboard/keys")
    r = signed_in.post("/dashboard/keys", data={"csrf": csrf, "name": "none"})
    assert r.status_code == 400 and "at least one scope" in r.text
    r = signed_in.post("/dashboard/keys", data={"csrf": csrf, "name": "x", "scopes": "root"})
    assert r.status_code == 400 and "unknown scope" in r.text
    assert store.keys.all() == []


def test_overview_quota_chart_queue_and_warnings(
    signed_in: TestClient, store: Store, acme: Account, clock: FakeClock
) -> None:
    store.identities.add(acme.id, "pending.example")
    admit(store, acme, "a@d.test", "b@d.test", "c@d.test")
    html = signed_in.get("/dashboard").text
    assert re.search(r'Sent today</span><span class="value">3<', html)
    assert re.search(r'Remaining today</span><span class="value">997<', html)
    assert "<svg" in html and html.count("<polyline") == 6
    assert '<span class="s-accepted">accepted 3</span>' in html
    assert re.search(r'queued</span><span class="value">3<', html)
    assert "<strong>pending.example</strong> is not verified yet" in html


def test_overview_empty_states(signed_in: TestClient) -> None:
    html = signed_in.get("/dashboard").text
    assert "Nothing sent in the last 30 days" in html


def test_billing_for_an_account_user_names_whom_to_ask(
    store: Store, tmp_path: Path, clock: FakeClock, ann: User, acme: Account
) -> None:
    settings = make_settings(tmp_path, dashboard={"operator_contact": "ops@example.net"})
    with TestClient(make_app(store, settings, clock), follow_redirects=False) as c:
        sign_in(c, ann.email)
        html = c.get("/dashboard/billing").text
        assert "<strong>ops@example.net</strong>" in html and 'name="plan"' not in html
        r = c.post(
            "/dashboard/billing",
            data={"csrf": csrf_of(html), "plan": "paid", "daily_quota": "9", "rate_limit": "9"},
        )
        assert r.status_code == 404
    assert store.accounts.get(acme.id).daily_quota == 1000  # type: ignore[union-attr]


def test_operator_changes_the_plan(
    client: TestClient, root: User, acme: Account, store: Store
) -> None:
    sign_in(client, root.email)
    csrf = page_csrf(client, "/dashboard/billing")
    bad = client.post(
        "/dashboard/billing",
        data={"csrf": csrf, "plan": "gold", "daily_quota": "5", "rate_limit": "5"},
    )
    assert bad.status_code == 400 and "plan must be one of" in bad.text
    r = client.post(
        "/dashboard/billing",
        data={"csrf": csrf, "plan": "free", "daily_quota": "50", "rate_limit": "2"},
    )
    assert r.status_code == 303
    account = store.accounts.get(acme.id)
    assert account is not None and (account.plan, account.daily_quota, account.rate_limit) == (
        "free",
        50,
        2,
    )
    [entry] = store.audit.list(acme.id)
    assert entry.action == "account.update" and entry.actor == f"user:{root.id}"
    assert entry.detail == {"plan": "free", "daily_quota": 50, "rate_limit": 2}


def test_operator_pages_are_404_to_account_users(signed_in: TestClient) -> None:
    csrf = page_csrf(signed_in)
    for path in ("/dashboard/accounts", "/dashboard/users", "/dashboard/queue"):
        assert signed_in.get(path).status_code == 404
        assert signed_in.post(path, data={"csrf": csrf}).status_code == 404


def test_operator_creates_an_account_and_a_user(
    client: TestClient, root: User, store: Store, app: object
) -> None:
    sign_in(client, root.email)
    assert "No accounts yet." in client.get("/dashboard/accounts").text
    csrf = page_csrf(client, "/dashboard/accounts")
    dup_free = client.post(
        "/dashboard/accounts",
        data={
            "csrf": csrf,
            "name": "globex",
            "plan": "paid",
            "daily_quota": "500",
            "rate_limit": "7",
        },
    )
    assert dup_free.status_code == 303
    [globex] = store.accounts.all()
    assert (globex.plan, globex.daily_quota, globex.rate_limit) == ("paid", 500, 7)
    assert "<h1>globex</h1>" in client.get("/dashboard").text  # switched to it
    dup = client.post("/dashboard/accounts", data={"csrf": csrf, "name": "globex", "plan": "paid"})
    assert dup.status_code == 409 and "exists already" in dup.text
    r = client.post(
        "/dashboard/users",
        data={
            "csrf": csrf,
            "email": "g@globex.test",
            "role": "account",
            "account": str(globex.id),
            "password": "globex password",
        },
    )
    assert r.status_code == 303
    user = store.users.by_email("g@globex.test")
    assert user is not None and user.account_id == globex.id
    short = client.post(
        "/dashboard/users",
        data={
            "csrf": csrf,
            "email": "h@globex.test",
            "role": "account",
            "account": str(globex.id),
            "password": "short",
        },
    )
    assert short.status_code == 400 and "at least 10 characters" in short.text
    assert [e.action for e in store.audit.list(globex.id)] == ["user.create", "account.create"]
    with TestClient(app, follow_redirects=False) as g:  # type: ignore[arg-type]
        assert sign_in(g, "g@globex.test", "globex password").status_code == 303
        r = client.post(f"/dashboard/users/{user.id}/disable", data={"csrf": csrf})
        assert r.status_code == 303
        assert g.get("/dashboard").status_code == 303  # signed out at once
    assert (
        client.post(f"/dashboard/users/{root.id}/disable", data={"csrf": csrf}).status_code == 400
    )
    assert (
        client.post(f"/dashboard/users/{user.id}/explode", data={"csrf": csrf}).status_code == 404
    )


def test_operator_queue_hold_and_release(
    client: TestClient, root: User, acme: Account, store: Store
) -> None:
    sign_in(client, root.email)
    mid = admit(store, acme, "a@d.test", "b@e.test")
    html = client.get("/dashboard/queue").text
    assert "a@d.test" in html and "d.test" in html
    csrf = csrf_of(html)
    rid = store.queue.select(ids=[mid], states=("queued",))[0]
    r = client.post("/dashboard/queue", data={"csrf": csrf, "id": str(rid), "action": "hold"})
    assert r.status_code == 303
    assert store.status.backlog().recipients == {"queued": 1, "held": 1}
    assert "a@d.test" in client.get("/dashboard/queue?state=held").text
    client.post("/dashboard/queue", data={"csrf": csrf, "domain": "d.test", "action": "release"})
    assert store.status.backlog().recipients == {"queued": 2}
    assert (
        client.post(
            "/dashboard/queue", data={"csrf": csrf, "id": "msg_nope", "action": "retry"}
        ).status_code
        == 404
    )
    assert client.get("/dashboard/queue?state=bogus").status_code == 400


def test_nothing_on_a_page_is_left_unescaped(
    signed_in: TestClient, store: Store, acme: Account, make_user: Callable[..., User]
) -> None:
    csrf = page_csrf(signed_in, "/dashboard/keys")
    signed_in.post(
        "/dashboard/keys",
        data={"csrf": csrf, "name": "<script>alert(1)</script>", "scopes": "email:send"},
    )
    html = signed_in.get("/dashboard/keys").text
    assert (
        "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    )
