"""Templates over the management API: own ones CRUD, system ones read-only and cloned, and the
render preview (the same renderer and limits as a send; nothing sent)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from relaygate.compose.templates import Template
from relaygate.store.sqlite import SqliteStore as Store

from .conftest import Tenant, detail, tenant


async def test_own_templates_create_read_replace_delete(
    client: httpx.AsyncClient, store: Store, admin: Tenant
) -> None:
    body = {"slug": "welcome-2", "subject": "Hi {{ name }}", "html": "<p>Hi {{ name }}</p>"}
    r = await client.post("/v1/templates", headers=admin.headers, json=body)
    assert r.status_code == 201, r.text
    assert r.json()["owner"] == f"account {admin.account_id}"
    listed = (await client.get("/v1/templates", headers=admin.headers)).json()["data"]
    owners = {t["slug"]: t["owner"] for t in listed}
    assert owners["welcome-2"] == f"account {admin.account_id}" and "welcome" in owners
    assert owners["welcome"] == "system"
    r = await client.put(
        "/v1/templates/welcome-2",
        headers=admin.headers,
        json={"subject": "Hello {{ name }}", "html": "<b>{{ name }}</b>", "text": "{{ name }}"},
    )
    assert r.status_code == 200, r.text
    got = (await client.get("/v1/templates/welcome-2", headers=admin.headers)).json()
    assert (got["subject"], got["text"]) == ("Hello {{ name }}", "{{ name }}")
    r = await client.delete("/v1/templates/welcome-2", headers=admin.headers)
    assert r.status_code == 200 and r.json() == {"slug": "welcome-2", "deleted": True}
    assert (await client.get("/v1/templates/welcome-2", headers=admin.headers)).status_code == 404
    actions = [e.action for e in store.audit.list(admin.account_id)]
    assert actions == ["template.delete", "template.update", "template.create"]


async def test_system_templates_are_read_only_and_cloned(
    client: httpx.AsyncClient, store: Store, admin: Tenant
) -> None:
    r = await client.get("/v1/templates/welcome", headers=admin.headers)
    assert r.status_code == 200 and r.json()["owner"] == "system"
    r = await client.delete("/v1/templates/welcome", headers=admin.headers)
    assert r.status_code == 404 and "read-only" in detail(r)
    r = await client.post(
        "/v1/templates", headers=admin.headers, json={"slug": "my-welcome", "clone_of": "welcome"}
    )
    assert r.status_code == 201, r.text
    own = store.templates.get(admin.account_id, "my-welcome")
    assert own is not None and own.html == r.json()["html"]
    r = await client.post(
        "/v1/templates", headers=admin.headers, json={"slug": "x", "clone_of": "nope"}
    )
    assert r.status_code == 400 and "clone_of" in detail(r)


async def test_render_preview_sends_nothing(
    client: httpx.AsyncClient, store: Store, admin: Tenant
) -> None:
    queued = sum(store.queue.count_by_state().values())
    r = await client.post(
        f"/v1/templates/{admin.template}/render",
        headers=admin.headers,
        json={"variables": {"name": "Alex <3"}},
    )
    assert r.status_code == 200, r.text
    assert r.json() == {
        "subject": "Hi Alex <3",
        "html": "<p>Alex &lt;3</p>",  # autoescaped, as in a send
        "text": "Alex <3\n",  # blank text: made from the HTML
    }
    assert sum(store.queue.count_by_state().values()) == queued
    r = await client.post(f"/v1/templates/{admin.template}/render", headers=admin.headers)
    assert r.status_code == 400 and "name" in detail(r)  # undefined variable, as a send says


async def test_render_preview_has_the_limits_of_a_send(
    client: httpx.AsyncClient, store: Store
) -> None:
    t = tenant(store, "looper", "account:admin")
    store.templates.save(
        t.account_id,
        Template(
            slug="big", subject="s", html="{% for i in range(100000) %}x{% endfor %}", text=""
        ),
    )
    r = await client.post("/v1/templates/big/render", headers=t.headers, json={})
    assert r.status_code == 400 and "range" in detail(r), r.text


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"slug": "Bad Slug", "subject": "s", "html": "x"}, "slug"),
        ({"slug": "ok", "html": "x"}, "subject"),
        ({"slug": "ok", "subject": "s"}, "html"),
        ({"slug": "ok", "subject": "s", "html": "{% if %}"}, "html"),
        ({"slug": "ok", "subject": "{{ x", "html": "x"}, "subject"),
        ({"slug": "ok", "subject": "s", "html": 5}, "html"),
        ({"slug": "ok", "clone_of": "welcome", "html": "x"}, "html"),
    ],
)
async def test_bad_templates_name_the_field(
    client: httpx.AsyncClient, store: Store, admin: Tenant, body: Any, field: str
) -> None:
    before = store.templates.all(admin.account_id)
    r = await client.post("/v1/templates", headers=admin.headers, json=body)
    assert r.status_code == 400 and field in detail(r), r.text
    assert store.templates.all(admin.account_id) == before


async def test_a_slug_is_a_name_within_the_account(
    client: httpx.AsyncClient, store: Store, admin: Tenant, other: Tenant
) -> None:
    r = await client.put(
        f"/v1/templates/{other.template}",
        headers=admin.headers,
        json={"subject": "mine", "html": "<p>mine</p>"},
    )
    assert r.status_code == 200
    theirs = store.templates.get(other.account_id, other.template)
    assert theirs is not None and theirs.subject == "Hi {{ name }}"  # untouched
    mine = store.templates.get(admin.account_id, other.template)
    assert mine is not None and mine.subject == "mine"
