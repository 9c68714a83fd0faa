"""The webhook body: one event as the exact JSON bytes a customer's endpoint receives.

The shape is the reference's (``sesmetric-api-reference.txt``, Webhooks)::

    {"event_type": "delivery", "user_id": 42,
     "payload": {"sm_mail_id": "msg_...", "message_id": "<...>", "recipients": ["r@x.example"],
                 "smtp_response": "250 ok", "event_timestamp": "2026-05-19T13:42:11Z",
                 "tags": [...], <type-specific fields>}}

Type-specific fields, always in this order:

    bounce     bounce_type, status, diagnostic, reason
    open       user_agent, ip, [is_proxy, is_scanner, first]
    click      user_agent, ip, url, [is_proxy, is_scanner, first]
    complaint  [feedback_type]
    delivery   (none)

Bracketed fields are optional and left out when not given; the others are required (a value may
be ``None`` where the table in ``_FIELDS`` says so). Anything else in ``extra`` is a ValueError, so
a typo never reaches a customer.

Encoding: compact separators, keys in the order above (not sorted), ``ensure_ascii=True``. The
bytes are therefore pure ASCII (non-ASCII text arrives as ``\\uXXXX`` escapes): a receiver that
decodes the body with the wrong charset before computing the HMAC still gets the same bytes
back, and the same event always serialises to the same bytes, so a retry carries the same
signature. NaN and infinities are refused.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from relaygate.clock import iso

EVENT_TYPES: tuple[str, ...] = ("delivery", "bounce", "open", "click", "complaint")

_STR = (str,)
_OPT_STR = (str, type(None))
_BOOL = (bool,)

# name -> (required, accepted types), in output order.
_TRACKING_FLAGS: dict[str, tuple[bool, tuple[type, ...]]] = {
    "is_proxy": (False, _BOOL),
    "is_scanner": (False, _BOOL),
    "first": (False, _BOOL),
}
_FIELDS: dict[str, dict[str, tuple[bool, tuple[type, ...]]]] = {
    "delivery": {},
    "bounce": {
        "bounce_type": (True, _STR),
        "status": (True, _OPT_STR),
        "diagnostic": (True, _OPT_STR),
        "reason": (True, _STR),
    },
    "open": {"user_agent": (True, _OPT_STR), "ip": (True, _OPT_STR), **_TRACKING_FLAGS},
    "click": {
        "user_agent": (True, _OPT_STR),
        "ip": (True, _OPT_STR),
        "url": (True, _STR),
        **_TRACKING_FLAGS,
    },
    "complaint": {"feedback_type": (False, _OPT_STR)},
}


def _type_specific(event_type: str, extra: Mapping[str, Any]) -> dict[str, Any]:
    spec = _FIELDS[event_type]
    unknown = sorted(set(extra) - set(spec))
    if unknown:
        raise ValueError(f"{event_type} event does not take field(s): {', '.join(unknown)}")
    out: dict[str, Any] = {}
    for name, (required, types) in spec.items():
        if name not in extra:
            if required:
                raise ValueError(f"{event_type} event needs field {name!r}")
            continue
        value = extra[name]
        if not isinstance(value, types):
            wanted = " or ".join("null" if t is type(None) else t.__name__ for t in types)
            raise ValueError(f"{event_type} field {name!r} must be {wanted}")
        out[name] = value
    return out


def build_domain_payload(
    *,
    user_id: int,
    domain: str,
    status: str,
    previous_status: str,
    reason: str,
    missing_since: float | None,
    event_timestamp: float,
) -> bytes:
    """The body of an event that is not about a message (API.md §14): a sending domain moved.

    ``{"event_type": "domain", "user_id": N, "payload": {"domain", "status", "previous_status",
    "reason", "missing_since" (ISO time or null), "event_timestamp"}}``.
    """
    payload: dict[str, Any] = {
        "domain": domain,
        "status": status,
        "previous_status": previous_status,
        "reason": reason,
        "missing_since": iso(missing_since) if missing_since is not None else None,
        "event_timestamp": iso(event_timestamp),
    }
    document = {"event_type": "domain", "user_id": user_id, "payload": payload}
    return json.dumps(document, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode(
        "ascii"
    )


def build_payload(
    *,
    event_type: str,
    user_id: int,
    sm_mail_id: str,
    message_id: str,
    recipients: Sequence[str],
    smtp_response: str,
    event_timestamp: float,
    tags: Sequence[str],
    extra: Mapping[str, Any],
) -> bytes:
    """The exact body bytes for one event. Raises ValueError on an unknown type or bad field."""
    if event_type not in _FIELDS:
        raise ValueError(f"unknown event type {event_type!r}; expected one of {EVENT_TYPES}")
    if isinstance(user_id, bool) or not isinstance(user_id, int):
        raise ValueError("user_id must be an int")
    if isinstance(recipients, str) or not all(isinstance(r, str) for r in recipients):
        raise ValueError("recipients must be a sequence of str")
    if isinstance(tags, str) or not all(isinstance(t, str) for t in tags):
        raise ValueError("tags must be a sequence of str")
    payload: dict[str, Any] = {
        "sm_mail_id": sm_mail_id,
        "message_id": message_id,
        "recipients": list(recipients),
        "smtp_response": smtp_response,
        "event_timestamp": iso(event_timestamp),
        "tags": list(tags),
    }
    payload.update(_type_specific(event_type, extra))
    document = {"event_type": event_type, "user_id": user_id, "payload": payload}
    return json.dumps(document, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode(
        "ascii"
    )
