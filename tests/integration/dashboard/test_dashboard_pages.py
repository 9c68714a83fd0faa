"""Messages (search, a message's timeline, headers and parts, cancel), suppressions (search,
add, remove, CSV import and export), webhooks (add, the secret once, the attempt log, replay,
rotate, remove), domains (add, records found / missing, Verify now, rotation) and templates
(catalog, clone, edit, a sandboxed preview); the cross-account matrix (another account's ids:
404, nothing changed); what strangers wrote is shown escaped."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from relaygate.clock import FakeClock
from relaygate.compose.renderer import Renderer
from relaygate.store.models import Account, AttemptResult, Outcome, User
from relaygate.store.sqlite import SqliteStore as Store

from ...conftest import make_settings  # type: ignore[import-not-found]
from .conftest import csrf_of, make_app, page_csrf, sign_in
from .test_dashboard_keys_billing import admit

XSS = "<script>alert(1)</script>"


@pytest.fixture
def full(store: Store, tmp_path: Path, clock: FakeClock, ann: User) -> Iterator[TestClient]:
    """Signed in as ann, with private webhook targets allowed and a DNS server that is not there."""
    settings = make_settings(
        tmp_path,
        webhooks={"allow_private": True},
        dns={"nameservers": ["127.0.0.1:9"], "timeout": 0.3},
    )
    renderer = Renderer(workers=1)
    with TestClient(
        make_app(store, settings, clock, renderer=renderer), follow_redirects=False
    ) as c:
        assert sign_in(c, ann.email).status_code == 303
        yield c
        c.portal.call(renderer.aclose)  # type: ignore[union-attr]


def test_messages_search_timeline_content_and_cancel(
    signed_in: TestClient, store: Store, acme: Account
) -> None:
    delivered = admit(store, acme, "a@d.test", subject="Invoice " + XSS)
    waiting = admit(store, acme, "b@e.test", "c@e.test", subject="Later")
    [claimed] = [
        c
        for c in store.queue.claim_sync("w", limit=10, lease_seconds=60)
        if c.message_id == delivered
    ]
    store.queue.record_sync(
        "w",
        [
            Outcome(
                recipient_id=claimed.id,
                state="bounced",
                response="550 5.1.1 no such user",
                data={"reason": "userunknown", "bounce_type": "hard"},
            )
        ],
    )
    store.queue.release_dead_owners(lambda owner: True)
    html = signed_in.get("/dashboard/messages").text
    assert XSS not in html and "Invoice &lt;script&gt;" in html
    assert (
        signed_in.get("/dashboard/messages?recipient=C@E.TEST").text.count(
            "/dashboard/messages/msg_"
        )
        == 1
    )
    assert "No message matches." in signed_in.get("/dashboard/messages?tag=nope").text
    assert (
        signed_in.get("/dashboard/messages?status=bounced").text.count(
            f"/dashboard/messages/{delivered}"
        )
        == 1
    )
    assert signed_in.get("/dashboard/messages?status=weird").status_code == 400
    assert signed_in.get("/dashboard/messages?since=yesterday").status_code == 400
    page = signed_in.get(f"/dashboard/messages/{delivered}").text
    assert "550 5.1.1 no such user" in page and "userunknown" in page and "bounced" in page
    assert '<th scope="row">Subject</th>' in page and XSS not in page
    r = signed_in.post(f"/dashboard/messages/{waiting}/cancel", data={"csrf": csrf_of(page)})
    assert r.status_code == 303
    assert {x.state for x in store.messages.recipients(waiting)} == {"cancelled"}
    assert store.audit.list(acme.id)[0].action == "message.cancel"


def test_messages_cursor_paging(
    signed_in: TestClient, store: Store, acme: Account, clock: FakeClock
) -> None:
    for i in range(55):
        admit(store, acme, f"r{i}@d.test", subject=f"n{i}")
        clock.advance(1)
    first = signed_in.get("/dashboard/messages").text
    older = re.search(r'href="(/dashboard/messages\?cursor=[^"]+)"', first)
    assert older and first.count("/dashboard/messages/msg_") == 50
    second = signed_in.get(older.group(1).replace("&amp;", "&")).text
    assert (
        second.count("/dashboard/messages/msg_") == 5
        and ">n0<" in second
        and "That is all." in second
    )


def test_suppressions_add_search_remove_import_export(
    signed_in: TestClient, store: Store, acme: Account
) -> None:
    csrf = page_csrf(signed_in, "/dashboard/suppressions")
    assert "The suppression list is empty." in signed_in.get("/dashboard/suppressions").text
    r = signed_in.post(
        "/dashboard/suppressions", data={"csrf": csrf, "address": "Bad@D.test", "reason": XSS}
    )
    assert r.status_code == 303
    assert store.suppressions.lookup(acme.id, ["bad@d.test"]) == {"bad@d.test": XSS}
    html = signed_in.get("/dashboard/suppressions?q=bad@").text
    assert "bad@d.test" in html and XSS not in html
    bad = signed_in.post(
        "/dashboard/suppressions", data={"csrf": csrf, "address": "not an address"}
    )
    assert bad.status_code == 400 and "address" in bad.text
    r = signed_in.post(
        "/dashboard/suppressions/import",
        data={"csrf": csrf},
        files={"file": ("s.csv", b"address,reason\nx@d.test,manual\nnonsense,oops\n", "text/csv")},
    )
    assert r.status_code == 200 and "Imported 1 address" in r.text and "1 line skipped" in r.text
    export = signed_in.get("/dashboard/suppressions.csv")
    assert export.headers["content-type"].startswith("text/csv")
    assert export.text.splitlines()[0].startswith("address,reason") and "x@d.test" in export.text
    r = signed_in.post(
        "/dashboard/suppressions/remove", data={"csrf": csrf, "address": "bad@d.test"}
    )
    assert r.status_code == 303 and store.suppressions.lookup(acme.id, ["bad@d.test"]) == {}
    assert (
        signed_in.post(
            "/dashboard/suppressions/remove", data={"csrf": csrf, "address": "bad@d.test"}
        ).status_code
        == 404
    )


def test_webhooks_add_log_replay_rotate_remove(
    full: TestClient, store: Store, acme: Account, clock: FakeClock
) -> None:
    csrf = page_csrf(full, "/dashboard/webhooks")
    bad = full.post("/dashboard/webhooks", data={"csrf": csrf, "url": "ftp://x.test/"})
    assert bad.status_code == 400 and "url" in bad.text
    r = full.post(
        "/dashboard/webhooks",
        data={
            "csrf": csrf,
            "url": "http://127.0.0.1:9/h?x=" + XSS,
            "events": ["bounce", "delivery"],
        },
    )
    assert r.status_code == 201 and "only this once" in r.text and XSS not in r.text
    [hook] = store.webhooks.all(account_id=acme.id)
    assert set(hook.events) == {"bounce", "delivery"}
    secret = re.search(r'id="hook-secret">([^<]+)<', r.text).group(1)  # type: ignore[union-attr]
    assert store.webhooks.reveal_secret(hook.id) == secret
    assert secret not in full.get(f"/dashboard/webhooks/{hook.id}").text
    mid = admit(store, acme, "a@d.test")
    [c] = [
        c for c in store.queue.claim_sync("w", limit=10, lease_seconds=60) if c.message_id == mid
    ]
    store.queue.record_sync("w", [Outcome(recipient_id=c.id, state="delivered", response="250 ok")])
    store.webhooks.fan_out_sync()
    import asyncio

    async def fail() -> None:
        [d] = await store.webhooks.claim("h", limit=5, per_endpoint=5, lease_seconds=60)
        await store.webhooks.record(
            "h",
            AttemptResult(
                delivery_id=d.id,
                ok=False,
                status=500,
                outcome="http_status",
                error="HTTP 500",
                duration_ms=3,
                next_attempt_at=None,
                response="upstream <b>down</b>",
            ),
        )

    asyncio.run(fail())
    page = full.get(f"/dashboard/webhooks/{hook.id}").text
    assert (
        "500" in page
        and "upstream &lt;b&gt;down&lt;/b&gt;" in page
        and "Replay the 1 abandoned" in page
    )
    r = full.post(f"/dashboard/webhooks/{hook.id}/replay", data={"csrf": csrf})
    assert r.status_code == 303 and store.webhooks.counts(hook.id).get("abandoned", 0) == 0
    r = full.post(f"/dashboard/webhooks/{hook.id}/rotate", data={"csrf": csrf})
    new = re.search(r'id="hook-secret">([^<]+)<', r.text).group(1)  # type: ignore[union-attr]
    assert r.status_code == 200 and new != secret and store.webhooks.reveal_secret(hook.id) == new
    r = full.post(f"/dashboard/webhooks/{hook.id}/remove", data={"csrf": csrf})
    assert r.status_code == 303 and store.webhooks.all(account_id=acme.id) == []
    assert [e.action for e in store.audit.list(acme.id)][:4] == [
        "webhook.delete",
        "webhook.rotate_secret",
        "webhook.replay",
        "webhook.create",
    ]


def test_domains_add_show_verify_rotate(full: TestClient, store: Store, acme: Account) -> None:
    csrf = page_csrf(full, "/dashboard/domains")
    r = full.post("/dashboard/domains", data={"csrf": csrf, "domain": "News.Example.ORG"})
    assert r.status_code == 303 and r.headers["location"] == "/dashboard/domains/news.example.org"
    page = full.get(r.headers["location"]).text
    assert "_relaygate.news.example.org" in page and "relaygate-verification=" in page
    assert "._domainkey.news.example.org" in page and 'data-copy="#rec-1"' in page
    assert "Verify now" in page and "DNS did not answer" in page  # the resolver is unreachable
    r = full.post("/dashboard/domains/news.example.org/verify", data={"csrf": csrf})
    assert r.status_code == 200 and "pending" in r.text
    assert (
        full.post("/dashboard/domains", data={"csrf": csrf, "domain": "not a domain!"}).status_code
        == 400
    )
    r = full.post("/dashboard/domains/news.example.org/rotate", data={"csrf": csrf})
    assert r.status_code == 409 and "verify it first" in r.text
    assert "news.example.org" in full.get("/dashboard/domains").text


def test_templates_clone_edit_preview(full: TestClient, store: Store, acme: Account) -> None:
    listing = full.get("/dashboard/templates").text
    slug = re.search(r'name="clone_of" value="([^"]+)"', listing).group(1)  # type: ignore[union-attr]
    csrf = csrf_of(listing)
    r = full.post("/dashboard/templates/clone", data={"csrf": csrf, "clone_of": slug})
    assert r.status_code == 303 and store.templates.get(acme.id, slug) is not None
    bad = full.post(
        f"/dashboard/templates/{slug}",
        data={"csrf": csrf, "subject": "Hi", "html": "{% if %}", "text": ""},
    )
    assert bad.status_code == 400
    r = full.post(
        f"/dashboard/templates/{slug}",
        data={
            "csrf": csrf,
            "subject": "Hi {{ name }}",
            "html": "<p style='color:red'>Hello {{ name }}</p><script>x()</script>",
            "text": "",
        },
    )
    assert r.status_code == 303
    edit = full.get(f"/dashboard/templates/{slug}?variables=" + '{"name": "Ann"}').text
    assert '<iframe class="preview" sandbox=""' in edit
    src = (
        re.search(r'<iframe class="preview" sandbox="" src="([^"]+)"', edit)
        .group(1)
        .replace("&amp;", "&")
    )  # type: ignore[union-attr]
    preview = full.get(src)
    assert preview.status_code == 200 and "Hello Ann" in preview.text
    csp = preview.headers["content-security-policy"]
    assert (
        "default-src 'none'" in csp and "script-src" not in csp and "frame-ancestors 'self'" in csp
    )
    assert preview.headers["x-frame-options"] == "SAMEORIGIN"
    r = full.post(f"/dashboard/templates/{slug}/delete", data={"csrf": csrf})
    assert r.status_code == 303 and store.templates.get(acme.id, slug) is None


def test_another_accounts_ids_are_404_and_change_nothing(
    signed_in: TestClient, store: Store, acme: Account, other: Account
) -> None:
    theirs = admit(store, other, "o@d.test")
    key, _ = store.keys.create(other.id)
    hook = store.webhooks.create(account_id=other.id, url="https://o.test/", events=(), secret="s")
    store.identities.add(other.id, "other.example")
    store.suppressions.add(other.id, "o@d.test", reason="x", source="manual")
    csrf = page_csrf(signed_in)
    gets = [
        f"/dashboard/messages/{theirs}",
        f"/dashboard/webhooks/{hook.id}",
        "/dashboard/domains/other.example",
        "/dashboard/templates/theirs-only",
    ]
    for path in gets:
        assert signed_in.get(path).status_code == 404, path
    posts = [
        (f"/dashboard/messages/{theirs}/cancel", {}),
        (f"/dashboard/keys/{key.id}/revoke", {}),
        (f"/dashboard/webhooks/{hook.id}/replay", {}),
        (f"/dashboard/webhooks/{hook.id}/rotate", {}),
        (f"/dashboard/webhooks/{hook.id}/remove", {}),
        ("/dashboard/domains/other.example/verify", {}),
        ("/dashboard/domains/other.example/rotate", {}),
        ("/dashboard/suppressions/remove", {"address": "o@d.test"}),
    ]
    for path, data in posts:
        assert signed_in.post(path, data={"csrf": csrf, **data}).status_code == 404, path
    assert store.keys.get(key.id).revoked_at is None  # type: ignore[union-attr]
    assert store.webhooks.get(hook.id).removed_at is None  # type: ignore[union-attr]
    assert {r.state for r in store.messages.recipients(theirs)} == {"queued"}
    assert store.suppressions.lookup(other.id, ["o@d.test"]) == {"o@d.test": "x"}
    assert theirs not in signed_in.get("/dashboard/messages").text
    assert store.audit.list(other.id) == []
