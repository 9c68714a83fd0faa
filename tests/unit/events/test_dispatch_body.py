"""The dispatcher's pure parts: event row → body, delivery references, the resolver factory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from relaygate.dnsresolver import make_resolver
from relaygate.events.dispatcher import build_body, event_ref
from relaygate.settings import from_mapping
from relaygate.store.ids import delivery_ref, parse_delivery_ref
from relaygate.store.models import ClaimedDelivery


def _claimed(event_type: str, data: dict[str, Any], **kw: Any) -> ClaimedDelivery:
    base: dict[str, Any] = {
        "id": 7,
        "webhook_id": "wh_1",
        "url": "https://h.example/",
        "secrets": ("whsec_a",),
        "attempts": 0,
        "event_id": 42,
        "event_type": event_type,
        "event_created_at": 1_790_000_000.0,
        "event_data": data,
        "account_id": 3,
        "message_id": "msg_1",
        "header_message_id": "<1@x>",
        "tags": ("t",),
        "recipients": ("r@example.net",),
    }
    base.update(kw)
    return ClaimedDelivery(**base)


def test_delivery_body_ignores_internal_event_fields() -> None:
    body = build_body(
        _claimed("delivery", {"smtp_response": "250 ok", "remote": "mx.x", "code": 250})
    )
    assert body == (
        b'{"event_type":"delivery","user_id":3,"payload":{"sm_mail_id":"msg_1",'
        b'"message_id":"<1@x>","recipients":["r@example.net"],"smtp_response":"250 ok",'
        b'"event_timestamp":"2026-09-21T14:13:20Z","tags":["t"]}}'
    )


def test_bounce_keeps_its_fields_and_coerces_bad_types() -> None:
    payload = json.loads(
        build_body(
            _claimed(
                "bounce",
                {"bounce_type": "hard", "status": 550, "diagnostic": "no", "reason": "userunknown"},
            )
        )
    )["payload"]
    assert [payload[k] for k in ("bounce_type", "status", "diagnostic", "reason")] == [
        "hard",
        None,
        "no",
        "userunknown",
    ]


def test_click_open_complaint_and_message_less_events() -> None:
    click = json.loads(
        build_body(_claimed("click", {"url": "https://x/", "first": True, "is_proxy": "yes"}))
    )["payload"]
    assert click["url"] == "https://x/" and click["first"] is True and "is_proxy" not in click
    assert click["user_agent"] is None and click["ip"] is None
    complaint = json.loads(
        build_body(
            _claimed("complaint", {}, message_id=None, header_message_id="", tags=(), recipients=())
        )
    )
    assert complaint["payload"]["sm_mail_id"] == "" and "feedback_type" not in complaint["payload"]
    with pytest.raises(ValueError):
        build_body(_claimed("queued", {}))


def test_secrets_stay_out_of_reprs() -> None:
    assert "whsec" not in repr(_claimed("delivery", {}))


def test_references() -> None:
    assert delivery_ref(12) == "whd_12" and event_ref(5) == "evt_5"
    assert parse_delivery_ref("whd_12") == 12 and parse_delivery_ref("12") == 12
    assert parse_delivery_ref("wh_ab") is None and parse_delivery_ref("whd_x") is None


def test_make_resolver_uses_only_configured_servers(tmp_path: Path) -> None:
    s = from_mapping(
        {"dns": {"nameservers": ["127.0.0.1:5353", "[::1]:5353"], "timeout": 2}},
        path=tmp_path / "c.toml",
    )
    r = make_resolver(s)
    assert [str(n) for n in r.nameservers] == ["127.0.0.1", "::1"]
    assert r.port == 5353 and r.lifetime == 2.0
