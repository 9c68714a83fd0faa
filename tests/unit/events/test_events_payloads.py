from __future__ import annotations

import json
from typing import Any

import pytest

from relaygate.events.payloads import EVENT_TYPES, build_payload

TS = 1_779_198_131.0  # 2026-05-19T13:42:11Z


def _build(event_type: str, **extra: Any) -> bytes:
    return build_payload(
        event_type=event_type,
        user_id=42,
        sm_mail_id="msg_3f8c",
        message_id="<abc@relay.example>",
        recipients=["recipient@example.com"],
        smtp_response="250 ok",
        event_timestamp=TS,
        tags=["welcome"],
        extra=extra,
    )


def test_delivery_is_exactly_the_reference_shape() -> None:
    assert _build("delivery") == (
        b'{"event_type":"delivery","user_id":42,"payload":{"sm_mail_id":"msg_3f8c",'
        b'"message_id":"<abc@relay.example>","recipients":["recipient@example.com"],'
        b'"smtp_response":"250 ok","event_timestamp":"2026-05-19T13:42:11Z","tags":["welcome"]}}'
    )


def test_bounce_adds_its_fields_in_fixed_order() -> None:
    body = _build(
        "bounce",
        reason="userunknown",
        diagnostic="550 no such user",
        status="5.1.1",
        bounce_type="hard",
    )
    payload = json.loads(body)["payload"]
    assert list(payload)[6:] == ["bounce_type", "status", "diagnostic", "reason"]
    assert payload["bounce_type"] == "hard" and payload["status"] == "5.1.1"


def test_click_with_tracking_flags_and_open_without() -> None:
    click = json.loads(
        _build(
            "click",
            url="https://x.example/",
            ip="203.0.113.9",
            user_agent="UA",
            first=True,
            is_proxy=False,
        )
    )["payload"]
    assert list(click)[6:] == ["user_agent", "ip", "url", "is_proxy", "first"]
    opened = json.loads(_build("open", ip=None, user_agent=None))["payload"]
    assert opened["ip"] is None and "is_scanner" not in opened and "url" not in opened


def test_complaint_optional_feedback_type() -> None:
    assert json.loads(_build("complaint"))["payload"].keys() >= {"tags"}
    assert (
        json.loads(_build("complaint", feedback_type="abuse"))["payload"]["feedback_type"]
        == "abuse"
    )


def test_every_event_type_builds() -> None:
    minimal = {
        "delivery": {},
        "complaint": {},
        "bounce": {
            "bounce_type": "soft",
            "status": None,
            "diagnostic": None,
            "reason": "suppressed",
        },
        "open": {"user_agent": "UA", "ip": "198.51.100.1"},
        "click": {"user_agent": "UA", "ip": "198.51.100.1", "url": "https://x.example/"},
    }
    assert set(minimal) == set(EVENT_TYPES)
    for event_type, extra in minimal.items():
        assert json.loads(_build(event_type, **extra))["event_type"] == event_type


@pytest.mark.parametrize(
    ("event_type", "extra", "message"),
    [
        ("delivered", {}, "unknown event type"),
        ("delivery", {"url": "x"}, "does not take"),
        (
            "bounce",
            {"bounce_type": "hard", "status": "5.1.1", "diagnostic": "x"},
            "needs field 'reason'",
        ),
        ("click", {"user_agent": "UA", "ip": "1.2.3.4"}, "needs field 'url'"),
        ("open", {"user_agent": "UA", "ip": "1.2.3.4", "first": "yes"}, "must be bool"),
        (
            "bounce",
            {"bounce_type": None, "status": "", "diagnostic": "", "reason": "x"},
            "must be str",
        ),
    ],
)
def test_bad_input_is_a_value_error(event_type: str, extra: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _build(event_type, **extra)


def test_bad_scalars_are_value_errors() -> None:
    common: dict[str, Any] = dict(
        event_type="delivery",
        sm_mail_id="m",
        message_id="i",
        smtp_response="250",
        event_timestamp=TS,
        extra={},
    )
    with pytest.raises(ValueError):
        build_payload(user_id=True, recipients=["a@b"], tags=[], **common)
    with pytest.raises(ValueError):
        build_payload(user_id=1, recipients="a@b", tags=[], **common)
    with pytest.raises(ValueError):
        build_payload(user_id=1, recipients=["a@b"], tags="t", **common)


def test_non_ascii_is_escaped_and_output_is_deterministic() -> None:
    body = build_payload(
        event_type="delivery",
        user_id=7,
        sm_mail_id="m",
        message_id="i",
        recipients=["jörg@exämple.de"],
        smtp_response="250 ✓",
        event_timestamp=TS,
        tags=["ü"],
        extra={},
    )
    assert body.isascii()
    assert b"j\\u00f6rg@ex\\u00e4mple.de" in body
    assert json.loads(body)["payload"]["smtp_response"] == "250 ✓"
    again = build_payload(
        event_type="delivery",
        user_id=7,
        sm_mail_id="m",
        message_id="i",
        recipients=["jörg@exämple.de"],
        smtp_response="250 ✓",
        event_timestamp=TS,
        tags=["ü"],
        extra={},
    )
    assert again == body
    assert b" " not in body.replace(b"250 ", b"")  # compact: no separator spaces
