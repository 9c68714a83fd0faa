"""POST /v1/send against the real app and a real store: every status code of the contract."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from email import message_from_bytes, policy
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relaygate.clock import FakeClock
from relaygate.gateway.admission import Admission
from relaygate.gateway.http import HttpApi
from relaygate.settings import Settings
from relaygate.store.sqlite import SqliteStore as Store


@pytest.fixture
async def client(
    store: Store, settings: Settings, clock: FakeClock
) -> AsyncIterator[httpx.AsyncClient]:
    api = HttpApi(
        store=store,
        admission=Admission(store=store, settings=settings, clock=clock),
        max_request_bytes=1024 * 1024,
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=api.app()), base_url="http://relay.test"
    ) as c:
        yield c


def body(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "from_email": "you@example.com",
        "to": ["recipient@dest.test"],
        "subject": "Welcome, Alex",
        "html": "<p>Hi Alex — welcome aboard.</p>",
        "text": "Hi Alex — welcome aboard.",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def queued(store: Store) -> int:
    return sum(store.queue.count_by_state().values())


async def test_reference_inline_example_is_queued_and_composed(
    client: httpx.AsyncClient, store: Store, sender: dict[str, Any]
) -> None:
    r = await client.post(
        "/v1/send",
        headers={"X-API-Key": sender["secret"]},
        json=body(
            cc=["c@dest.test"],
            bcc=["hidden@dest.test"],
            reply_to="Support <help@example.com>",
            tags=["welcome"],
        ),
    )
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["status"] == "queued" and data["id"].startswith("msg_") and len(data["id"]) == 36
    assert r.headers["X-RateLimit-Limit"] == "50" and r.headers["X-RateLimit-Remaining"] == "49"
    m = store.messages.get(data["id"])
    assert m is not None and m["tags"] == ["welcome"]
    assert [(x["address"], x["kind"], x["state"]) for x in m["recipients"]] == [
        ("recipient@dest.test", "to", "queued"),
        ("c@dest.test", "cc", "queued"),
        ("hidden@dest.test", "bcc", "queued"),
    ]
    parsed = message_from_bytes(store.messages.body(data["id"]), policy=policy.default)
    assert parsed["Subject"] == "Welcome, Alex"
    assert parsed["Reply-To"] == "Support <help@example.com>"
    assert parsed["Message-ID"] == f"<{data['id']}@relay.test>"
    assert parsed["Bcc"] is None and b"hidden@dest.test" not in store.messages.body(data["id"])
    assert parsed.get_content_type() == "multipart/alternative"
    parts = [p.get_content_type() for p in parsed.iter_parts()]
    assert parts == ["text/plain", "text/html"]


async def test_read_back_the_message(
    client: httpx.AsyncClient, sender: dict[str, Any], store: Store
) -> None:
    r = await client.post("/v1/send", headers={"X-API-Key": sender["secret"]}, json=body())
    mid = r.json()["id"]
    got = await client.get(f"/v1/messages/{mid}", headers={"X-API-Key": sender["secret"]})
    assert got.status_code == 200
    assert got.json()["recipients"][0]["state"] == "queued"
    assert [e["type"] for e in got.json()["recipients"][0]["events"]] == ["queued"]
    other = store.accounts.create("other", plan="paid")
    _, other_secret = store.keys.create(other.id, scopes=["email:read"])
    assert (
        await client.get(f"/v1/messages/{mid}", headers={"X-API-Key": other_secret})
    ).status_code == 404


CASES: list[tuple[str, Any, int, str]] = [
    ("corrupt json", b"{not json", 400, "not valid JSON"),
    ("not an object", b"[1, 2]", 400, "must be a JSON object"),
    ("empty body", b"", 400, "empty"),
    ("missing from", body(from_email=None), 400, "from_email is required"),
    ("invalid from", body(from_email="nope"), 400, "from_email"),
    ("no recipients", body(to=[]), 400, "at least one recipient"),
    ("invalid to", body(to=["a@b.c", "not an address"]), 400, "to[1]"),
    ("to not list", body(to=5), 400, "to must be a list"),
    (
        "too many",
        body(to=[f"r{i}@dest.test" for i in range(30)], cc=[f"c{i}@dest.test" for i in range(21)]),
        400,
        "too many recipients",
    ),
    ("missing subject", body(subject=None), 400, "subject is required"),
    ("missing body", body(html=None, text=None), 400, "html or text is required"),
    ("owned header", body(headers={"From": "x@evil.test"}), 400, "set by relaygate"),
    ("crlf header", body(headers={"X-Thing": "a\r\nBcc: x@evil.test"}), 400, "line break"),
    (
        "bad base64",
        body(
            attachments=[
                {
                    "filename": "a.txt",
                    "content_base64": "!!!notbase64",
                    "content_type": "text/plain",
                }
            ]
        ),
        400,
        "base64",
    ),
    ("tags not strings", body(tags=[1]), 400, "tags"),
    ("unknown field", body(form_email="x"), 400, "unknown field"),
    ("unverified sender", body(from_email="you@elsewhere.test"), 403, "not a verified identity"),
    ("unknown template", body(template="nope", subject=None), 404, "template"),
]


@pytest.mark.parametrize(("name", "payload", "status", "detail"), CASES, ids=[c[0] for c in CASES])
async def test_error_statuses(
    client: httpx.AsyncClient,
    store: Store,
    sender: dict[str, Any],
    name: str,
    payload: Any,
    status: int,
    detail: str,
) -> None:
    content = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    r = await client.post(
        "/v1/send",
        headers={"X-API-Key": sender["secret"], "Content-Type": "application/json"},
        content=content,
    )
    assert r.status_code == status, r.text
    assert detail in r.json()["detail"]
    assert queued(store) == 0
    assert "X-RateLimit-Limit" in r.headers


async def test_auth_statuses(
    client: httpx.AsyncClient, store: Store, sender: dict[str, Any]
) -> None:
    r = await client.post("/v1/send", json=body())
    assert (r.status_code, r.json()["detail"]) == (401, "missing X-API-Key header")
    r = await client.post("/v1/send", headers={"X-API-Key": "sk_live_" + "x" * 40}, json=body())
    assert (r.status_code, r.json()["detail"]) == (401, "unknown or revoked API key")
    store.keys.revoke(sender["key"].id)
    r = await client.post("/v1/send", headers={"X-API-Key": sender["secret"]}, json=body())
    assert r.status_code == 401
    free = store.accounts.create("free", plan="free")
    store.identities.add(free.id, "example.com", verified=True)
    _, free_secret = store.keys.create(free.id)
    r = await client.post("/v1/send", headers={"X-API-Key": free_secret}, json=body())
    assert r.status_code == 402 and "free plan" in r.json()["detail"]
    paid = store.accounts.create("readonly", plan="paid")
    _, read_secret = store.keys.create(paid.id, scopes=["email:read"])
    r = await client.post("/v1/send", headers={"X-API-Key": read_secret}, json=body())
    assert r.status_code == 403 and "email:send" in r.json()["detail"]
    assert queued(store) == 0


async def test_too_large_is_413_without_queueing(
    client: httpx.AsyncClient, store: Store, sender: dict[str, Any]
) -> None:
    big = body(html="x" * (1024 * 1024 + 10))
    r = await client.post("/v1/send", headers={"X-API-Key": sender["secret"]}, json=big)
    assert r.status_code == 413 and "larger than" in r.json()["detail"]

    async def stream() -> AsyncIterator[bytes]:  # no Content-Length: counted while reading
        for _ in range(2000):
            yield b"x" * 1024

    r = await client.post("/v1/send", headers={"X-API-Key": sender["secret"]}, content=stream())
    assert r.status_code == 413
    assert queued(store) == 0


async def test_rate_limit_is_429_with_retry_after(
    client: httpx.AsyncClient, store: Store, clock: FakeClock
) -> None:
    account = store.accounts.create("limited", plan="paid", rate_limit=2, daily_quota=100)
    store.identities.add(account.id, "example.com", verified=True)
    _, secret = store.keys.create(account.id)
    codes = [
        (await client.post("/v1/send", headers={"X-API-Key": secret}, json=body())).status_code
        for _ in range(2)
    ]
    r = await client.post("/v1/send", headers={"X-API-Key": secret}, json=body())
    assert codes == [200, 200]
    assert (
        r.status_code == 429
        and r.headers["Retry-After"] == "1"
        and r.headers["X-RateLimit-Remaining"] == "0"
    )
    assert queued(store) == 2
    clock.advance(1)
    assert (
        await client.post("/v1/send", headers={"X-API-Key": secret}, json=body())
    ).status_code == 200


async def test_attachment_round_trips(
    client: httpx.AsyncClient, store: Store, sender: dict[str, Any]
) -> None:
    blob = bytes(range(256)) * 40
    r = await client.post(
        "/v1/send",
        headers={"X-API-Key": sender["secret"]},
        json=body(
            attachments=[
                {
                    "filename": "data.bin",
                    "content_base64": base64.b64encode(blob).decode(),
                    "content_type": "application/octet-stream",
                }
            ]
        ),
    )
    assert r.status_code == 200, r.text
    parsed = message_from_bytes(store.messages.body(r.json()["id"]), policy=policy.default)
    atts = list(parsed.iter_attachments())
    assert [a.get_filename() for a in atts] == ["data.bin"]
    assert atts[0].get_content() == blob


async def test_unknown_paths_and_methods_are_json_errors(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/nope")
    assert r.status_code == 404 and r.json() == {"detail": "not found"}
    r = await client.get("/v1/send")
    assert r.status_code == 405 and "detail" in r.json()


async def test_store_failure_is_503_never_500(
    client: httpx.AsyncClient, store: Store, sender: dict[str, Any]
) -> None:
    store.stop_writer()  # the spool cannot accept
    r = await client.post("/v1/send", headers={"X-API-Key": sender["secret"]}, json=body())
    assert r.status_code == 503 and r.headers["Retry-After"] == "5"
    assert "retry" in r.json()["detail"]


#: any text a JSON string can carry: half of it with a lone surrogate (a ``\ud800`` escape)
_surrogate = st.integers(0xD800, 0xDFFF).map(chr)
any_text = st.text(max_size=30) | st.builds(
    lambda a, s, b: a + s + b, st.text(max_size=10), _surrogate, st.text(max_size=10)
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | any_text,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(any_text, children, max_size=4)
    ),
    max_leaves=12,
)
field_names = st.sampled_from(
    [
        "from_email",
        "to",
        "cc",
        "bcc",
        "reply_to",
        "subject",
        "html",
        "text",
        "template",
        "variables",
        "headers",
        "tags",
        "attachments",
    ]
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    payload=st.one_of(
        st.dictionaries(field_names, json_values, max_size=8), json_values, st.binary(max_size=80)
    )
)
async def test_fuzzed_bodies_never_500_and_4xx_queue_nothing(
    client: httpx.AsyncClient, store: Store, sender: dict[str, Any], payload: Any
) -> None:
    before = queued(store)
    content = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    r = await client.post("/v1/send", headers={"X-API-Key": sender["secret"]}, content=content)
    assert r.status_code in (200, 400, 403, 404, 413), r.text
    assert isinstance(r.json()["detail" if r.status_code != 200 else "id"], str)
    if r.status_code != 200:
        assert queued(store) == before


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    field=st.sampled_from(
        ["subject", "html", "text", "tags", "template", "variables", "headers", "reply_to", "cc"]
    ),
    value=any_text | st.lists(any_text, max_size=3) | json_values,
    templated=st.booleans(),
)
async def test_one_hostile_field_in_a_valid_request_is_a_clear_answer(
    client: httpx.AsyncClient,
    store: Store,
    sender: dict[str, Any],
    field: str,
    value: Any,
    templated: bool,
) -> None:
    data = (
        body(subject=None, html=None, text=None, template="welcome", variables={"user": {}})
        if templated
        else body()
    )
    data[field] = value
    before = queued(store)
    r = await client.post(
        "/v1/send", headers={"X-API-Key": sender["secret"]}, content=json.dumps(data).encode()
    )
    assert r.status_code in (200, 400, 404), r.text  # never 503 "retry later" for bad input
    if r.status_code != 200:
        assert r.json()["detail"] and queued(store) == before


async def test_idempotency_key(
    client: httpx.AsyncClient, store: Store, sender: dict[str, Any], clock: FakeClock
) -> None:
    headers = {
        "X-API-Key": sender["secret"],
        "Idempotency-Key": "order-42",
        "Content-Type": "application/json",
    }
    raw = json.dumps(body()).encode()
    first = await client.post("/v1/send", headers=headers, content=raw)
    again = await client.post("/v1/send", headers=headers, content=raw)
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    assert queued(store) == 1
    other = await client.post(
        "/v1/send", headers=headers, content=json.dumps(body(subject="different")).encode()
    )
    assert other.status_code == 409 and "different request body" in other.json()["detail"]
    assert queued(store) == 1
    clock.advance(86400 + 1)  # after 24 h the key may be reused
    later = await client.post("/v1/send", headers=headers, content=raw)
    assert later.status_code == 200 and later.json()["id"] != first.json()["id"]
    assert queued(store) == 2


async def test_list_messages_filters_and_cursor(
    client: httpx.AsyncClient, store: Store, sender: dict[str, Any], clock: FakeClock
) -> None:
    headers = {"X-API-Key": sender["secret"]}
    ids = []
    for i in range(5):
        clock.advance(1)
        r = await client.post(
            "/v1/send",
            headers=headers,
            json=body(tags=["even" if i % 2 == 0 else "odd"], to=[f"r{i}@dest.test"]),
        )
        ids.append(r.json()["id"])
    page1 = (await client.get("/v1/messages", headers=headers, params={"limit": 2})).json()
    assert [m["id"] for m in page1["data"]] == ids[::-1][:2]
    page2 = (
        await client.get(
            "/v1/messages", headers=headers, params={"limit": 2, "cursor": page1["next_cursor"]}
        )
    ).json()
    page3 = (
        await client.get(
            "/v1/messages", headers=headers, params={"limit": 2, "cursor": page2["next_cursor"]}
        )
    ).json()
    assert [m["id"] for m in page2["data"] + page3["data"]] == ids[::-1][2:]
    assert page3["next_cursor"] is None
    evens = (await client.get("/v1/messages", headers=headers, params={"tag": "even"})).json()[
        "data"
    ]
    assert [m["id"] for m in evens] == [ids[4], ids[2], ids[0]]
    by_rcpt = (
        await client.get("/v1/messages", headers=headers, params={"recipient": "R3@dest.test"})
    ).json()["data"]
    assert [m["id"] for m in by_rcpt] == [ids[3]]
    assert (
        await client.get("/v1/messages", headers=headers, params={"status": "delivered"})
    ).json()["data"] == []
    assert (
        len(
            (await client.get("/v1/messages", headers=headers, params={"status": "queued"})).json()[
                "data"
            ]
        )
        == 5
    )
    assert (
        await client.get("/v1/messages", headers=headers, params={"status": "nope"})
    ).status_code == 400
    assert (
        await client.get("/v1/messages", headers=headers, params={"cursor": "%%%"})
    ).status_code == 400
    assert (
        await client.get("/v1/messages", headers=headers, params={"since": "yesterday"})
    ).status_code == 400


async def test_reference_template_example_verbatim(
    client: httpx.AsyncClient, store: Store, sender: dict[str, Any]
) -> None:
    # The reference's second curl, with only the URL, key and sender domain swapped.
    raw = b"""{
"from_email": "you@example.com",
"to": [
"recipient@example.com"
],
"template": "welcome",
"variables": {
"user": {
"first_name": "Alex"
}
}
}"""
    r = await client.post(
        "/v1/send",
        headers={"X-API-Key": sender["secret"], "Content-Type": "application/json"},
        content=raw,
    )
    assert r.status_code == 200, r.text
    parsed = message_from_bytes(store.messages.body(r.json()["id"]), policy=policy.default)
    html = next(p for p in parsed.walk() if p.get_content_type() == "text/html").get_content()
    text = next(p for p in parsed.walk() if p.get_content_type() == "text/plain").get_content()
    assert parsed["Subject"] == "Welcome, Alex!"
    assert "Alex" in html and "{{" not in html
    assert "Alex" in text and "{{" not in text


async def test_account_template_shadows_system_and_escapes_html(
    client: httpx.AsyncClient, store: Store, sender: dict[str, Any]
) -> None:
    from relaygate.compose.templates import Template

    store.templates.save(
        sender["account"].id,
        Template(slug="welcome", subject="Hi {{ name }}", html="<p>{{ name }}</p>", text=""),
    )
    r = await client.post(
        "/v1/send",
        headers={"X-API-Key": sender["secret"]},
        json={
            "from_email": "you@example.com",
            "to": ["r@dest.test"],
            "template": "welcome",
            "variables": {"name": "<script>x</script>"},
        },
    )
    assert r.status_code == 200, r.text
    parsed = message_from_bytes(store.messages.body(r.json()["id"]), policy=policy.default)
    assert parsed["Subject"] == "Hi <script>x</script>"  # the subject is not HTML
    html = next(p for p in parsed.walk() if p.get_content_type() == "text/html").get_content()
    assert "&lt;script&gt;" in html and "<script>" not in html
    text = next(p for p in parsed.walk() if p.get_content_type() == "text/plain").get_content()
    assert "<script>x</script>" in text  # derived from the HTML when the template has no text part


async def test_account_template_updated_or_deleted_takes_effect_on_the_next_send(
    client: httpx.AsyncClient, store: Store, sender: dict[str, Any]
) -> None:
    from relaygate.compose.templates import Template

    def send() -> Any:
        return client.post(
            "/v1/send",
            headers={"X-API-Key": sender["secret"]},
            json={
                "from_email": "you@example.com",
                "to": ["r@dest.test"],
                "template": "welcome",
                "variables": {"user": {"first_name": "Alex"}},
            },
        )

    subjects = []
    for subject in ("v1 {{ user.first_name }}", "v2 {{ user.first_name }}"):
        store.templates.save(
            sender["account"].id,
            Template(slug="welcome", subject=subject, html="<p>x</p>", text="x"),
        )
        r = await send()
        assert r.status_code == 200, r.text
        subjects.append(message_from_bytes(store.messages.body(r.json()["id"]))["Subject"])
    assert store.templates.delete(sender["account"].id, "welcome")
    r = await send()
    assert r.status_code == 200, r.text
    subjects.append(message_from_bytes(store.messages.body(r.json()["id"]))["Subject"])
    assert subjects == ["v1 Alex", "v2 Alex", "Welcome, Alex!"]  # then the system template


@pytest.mark.parametrize(
    "payload",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ cycler.__init__.__globals__ }}",
        "{% for i in range(10**9) %}x{% endfor %}",
        "{{ 'x' * 100000000 }}",
    ],
)
async def test_ssti_in_subject_is_refused_and_queues_nothing(
    client: httpx.AsyncClient, store: Store, sender: dict[str, Any], payload: str
) -> None:
    r = await client.post(
        "/v1/send",
        headers={"X-API-Key": sender["secret"]},
        json={
            "from_email": "you@example.com",
            "to": ["r@dest.test"],
            "template": "welcome",
            "subject": payload,
            "variables": {"user": {"first_name": "A"}},
        },
    )
    assert r.status_code == 400 and r.json()["detail"].startswith("template 'welcome':")
    assert "Traceback" not in r.text
    assert queued(store) == 0


async def test_undefined_variable_is_a_400_naming_it(
    client: httpx.AsyncClient, store: Store, sender: dict[str, Any]
) -> None:
    from relaygate.compose.templates import Template

    store.templates.save(
        sender["account"].id,
        Template(slug="t1", subject="Order {{ order.id }}", html="<p>x</p>", text="x"),
    )
    r = await client.post(
        "/v1/send",
        headers={"X-API-Key": sender["secret"]},
        json={
            "from_email": "you@example.com",
            "to": ["r@dest.test"],
            "template": "t1",
            "variables": {},
        },
    )
    assert r.status_code == 400 and "order" in r.json()["detail"]


async def test_openapi_describes_every_public_route(
    store: Store, settings: Settings, clock: FakeClock
) -> None:
    from starlette.routing import Route

    from relaygate.events.tracking_app import HitRecorder, tracking_routes

    recorder = HitRecorder(lambda hits: None)
    api = HttpApi(
        store=store,
        admission=Admission(store=store, settings=settings, clock=clock),
        max_request_bytes=1024,
        extra_routes=tracking_routes(keys=[b"k" * 32], recorder=recorder, clock=clock),
    )
    app = api.app()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://relay.test"
    ) as c:
        doc = (await c.get("/openapi.json")).json()
    assert doc["openapi"].startswith("3.")
    for route in app.routes:
        assert isinstance(route, Route)
        if route.path == "/openapi.json":
            continue
        assert route.path in doc["paths"], route.path
        for method in route.methods or ():
            if method != "HEAD":
                assert method.lower() in doc["paths"][route.path], (route.path, method)
    send = doc["paths"]["/v1/send"]["post"]["responses"]
    assert {"200", "400", "401", "402", "403", "404", "409", "413", "429", "502", "503"} <= set(
        send
    )


async def test_quota_holds_across_two_app_instances_on_one_store(
    tmp_path: Any, store: Store, settings: Settings, clock: FakeClock
) -> None:
    account = store.accounts.create("shared", plan="paid", rate_limit=1000, daily_quota=3)
    store.identities.add(account.id, "example.com", verified=True)
    _, secret = store.keys.create(account.id)
    other = Store(store.path, clock=clock).open()  # a second process's view of the same file
    other.start_writer()
    try:
        apps = [
            HttpApi(
                store=s,
                admission=Admission(store=s, settings=settings, clock=clock),
                max_request_bytes=1 << 20,
            ).app()
            for s in (store, other)
        ]
        clients = [
            httpx.AsyncClient(transport=httpx.ASGITransport(app=a), base_url="http://relay.test")
            for a in apps
        ]
        codes = []
        for i in range(5):  # alternate between the two instances
            r = await clients[i % 2].post(
                "/v1/send", headers={"X-API-Key": secret}, json=body(to=[f"r{i}@dest.test"])
            )
            codes.append(r.status_code)
        assert codes == [200, 200, 200, 429, 429]
        r = await clients[1].post("/v1/send", headers={"X-API-Key": secret}, json=body())
        assert "daily quota" in r.json()["detail"] and int(r.headers["Retry-After"]) > 1
        assert queued(store) == 3
        for c in clients:
            await c.aclose()
    finally:
        other.close()
