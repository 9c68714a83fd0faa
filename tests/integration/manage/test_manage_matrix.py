"""Every management route, as a table: a key without ``account:admin`` is refused (403) and
changes nothing; another account's ids are "not found" (404) and change nothing; the OpenAPI
document describes each route with its request and response schemas."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from relaygate.store.sqlite import SqliteStore as Store

from .conftest import Tenant, detail, tenant

#: (method, path, JSON body); the path's ``{…}`` are filled with an account's ids (``fill``).
ROUTES: list[tuple[str, str, Any]] = [
    ("GET", "/v1/account", None),
    ("GET", "/v1/usage", None),
    ("GET", "/v1/audit", None),
    ("GET", "/v1/keys", None),
    ("POST", "/v1/keys", {"name": "new", "scopes": ["email:send"]}),
    ("DELETE", "/v1/keys/{id}", None),
    ("GET", "/v1/domains", None),
    ("POST", "/v1/domains", {"domain": "new.test"}),
    ("GET", "/v1/domains/{domain}", None),
    ("DELETE", "/v1/domains/{domain}", None),
    ("POST", "/v1/domains/{domain}/verify", None),
    ("POST", "/v1/domains/{domain}/dkim/rotate", None),
    ("GET", "/v1/webhooks", None),
    ("POST", "/v1/webhooks", {"url": "https://hooks.example/new", "events": ["delivery"]}),
    ("GET", "/v1/webhooks/{id}", None),
    ("PATCH", "/v1/webhooks/{id}", {"events": ["bounce"]}),
    ("DELETE", "/v1/webhooks/{id}", None),
    ("POST", "/v1/webhooks/{id}/rotate-secret", {"grace": 60}),
    ("GET", "/v1/webhooks/{id}/attempts", None),
    ("POST", "/v1/webhooks/{id}/replay", {"status": "abandoned"}),
    ("GET", "/v1/templates", None),
    ("POST", "/v1/templates", {"slug": "new", "subject": "s", "html": "<p>x</p>", "text": "x"}),
    ("GET", "/v1/templates/{slug}", None),
    ("PUT", "/v1/templates/{slug}", {"subject": "s", "html": "<p>changed</p>", "text": ""}),
    ("DELETE", "/v1/templates/{slug}", None),
    ("POST", "/v1/templates/{slug}/render", {"variables": {"name": "x"}}),
    ("POST", "/v1/suppressions", {"address": "new@dest.test", "reason": "x"}),
    ("POST", "/v1/suppressions/import", {"csv": "new@dest.test,x\n"}),
    ("POST", "/v1/messages/{id}/cancel", None),
    ("GET", "/v1/messages/{id}/content", None),
]
#: Not in the isolation matrix: a template slug is a name within the caller's own account, so
#: PUT with a slug another account uses creates the caller's own template (the other account's
#: is untouched; test_manage_templates checks it).
OWN_NAMESPACE = {("PUT", "/v1/templates/{slug}")}
#: Routes of an older section that keep their own scope (API.md §3).
OWN_SCOPE = {("DELETE", "/v1/suppressions/{address}"): "email:send"}


def fill(path: str, t: Tenant, address: str = "theirs@dest.test") -> str:
    """``path`` with the ids of ``t``'s objects of the noun it names."""
    ids = {"keys": t.key_id, "messages": t.message_id, "webhooks": t.webhook_id}
    noun = path.split("/")[2]
    return path.format(id=ids.get(noun, ""), address=address, domain=t.domain, slug=t.template)


def snapshot(store: Store, account_id: int) -> Any:
    m = [
        r["state"]
        for mid in [x.id for x in store.messages.search(account_id, limit=100)]
        for r in (store.messages.get(mid) or {"recipients": []})["recipients"]
    ]
    return (
        [(k.id, k.revoked_at) for k in store.keys.all(account_id)],
        [s.address for s in store.suppressions.all(account_id)],
        store.identities.details(account_id),
        [store.templates.get(account_id, x.slug) for x in store.templates.all(account_id)],
        store.webhooks.all(account_id=account_id, include_removed=True),
        [store.webhooks.reveal_secret(w.id) for w in store.webhooks.all(account_id=account_id)],
        m,
        store.audit.list(account_id),
    )


@pytest.mark.parametrize("scope", ["email:send", "email:read"])
@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
async def test_a_key_without_account_admin_is_refused(
    client: httpx.AsyncClient, store: Store, scope: str, method: str, path: str, body: Any
) -> None:
    t = tenant(store, f"plain-{scope}", scope)
    before = snapshot(store, t.account_id)
    r = await client.request(method, fill(path, t), headers=t.headers, json=body)
    assert r.status_code == 403, r.text
    assert "account:admin" in detail(r)
    assert snapshot(store, t.account_id) == before


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [r for r in ROUTES if "{" in r[1] and (r[0], r[1]) not in OWN_NAMESPACE]
    + [("DELETE", "/v1/suppressions/{address}", None)],
)
async def test_another_accounts_ids_are_not_found(
    client: httpx.AsyncClient,
    store: Store,
    admin: Tenant,
    other: Tenant,
    method: str,
    path: str,
    body: Any,
) -> None:
    mine, theirs = snapshot(store, admin.account_id), snapshot(store, other.account_id)
    r = await client.request(method, fill(path, other), headers=admin.headers, json=body)
    assert r.status_code == 404, r.text
    detail(r)
    assert snapshot(store, other.account_id) == theirs
    assert snapshot(store, admin.account_id) == mine


async def test_every_route_is_in_the_openapi_document_with_its_schemas(
    client: httpx.AsyncClient,
) -> None:
    doc = (await client.get("/openapi.json")).json()
    schemas = doc["components"]["schemas"]

    def resolve(schema: dict[str, Any]) -> dict[str, Any]:
        ref = schema.get("$ref", "")
        if ref:
            name = ref.rsplit("/", 1)[-1]
            assert name in schemas, ref
            return dict(schemas[name])
        return schema

    for method, path, body in [*ROUTES, *((m, p, None) for m, p in OWN_SCOPE)]:
        op = doc["paths"][path][method.lower()]
        ok = [c for c in op["responses"] if c.startswith("2")]
        assert len(ok) == 1, (method, path)
        content = op["responses"][ok[0]]["content"]["application/json"]["schema"]
        assert resolve(content)
        assert {"401", "403"} <= set(op["responses"]), (method, path)
        if body is not None:
            request = op["requestBody"]["content"]["application/json"]["schema"]
            props = resolve(request).get("properties", {})
            assert set(body) <= set(props), (method, path, set(body) - set(props))
        for name in [p[1:-1] for p in path.split("/") if p.startswith("{")]:
            assert name in {p["name"] for p in op["parameters"] if p["in"] == "path"}, path
