from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from relaygate.events.signing import (
    new_secret,
    sign,
    sign_v2,
    signature_headers,
    verify,
    verify_v2,
)

BODY = b'{"event_type":"delivery"}'


def test_sign_matches_an_independent_hmac() -> None:
    # Computed with: printf '%s' '{"event_type":"delivery"}' | openssl dgst -sha256 -hmac whsec_abc
    assert sign(BODY, "whsec_abc") == (
        "sha256=9c68a3d979f859455f90c931a4c9d0adaffdecfa0ad5537c7324679c27b378df"
    )


def test_v2_matches_the_standard_webhooks_reference_vector() -> None:
    # The Standard Webhooks spec's example (also what the standardwebhooks library produces).
    got = sign_v2(
        body=b'{"test": 2432232314}',
        secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        event_id="msg_p5jXN8AQM9LWM0D4loKWxJek",
        timestamp=1614265330,
    )
    assert got == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_v2_key_falls_back_to_the_whole_string_when_not_base64() -> None:
    secret = "legacy-secret-not-base64!"
    want = hmac.new(secret.encode(), b"e1.5." + BODY, hashlib.sha256).digest()
    assert sign_v2(body=BODY, secret=secret, event_id="e1", timestamp=5) == (
        "v1," + base64.b64encode(want).decode()
    )


def test_new_secret_format_and_entropy() -> None:
    fixed = new_secret(token_bytes=lambda n: bytes(range(n)))
    assert fixed.startswith("whsec_")
    assert base64.b64decode(fixed[6:]) == bytes(range(32))
    many = {new_secret() for _ in range(50)}
    assert len(many) == 50
    with pytest.raises(ValueError):
        new_secret(token_bytes=lambda n: b"short")


def test_headers_current_secret_only_in_x_sm_signature_and_all_in_v2() -> None:
    current, old = new_secret(), new_secret()
    headers = signature_headers(body=BODY, secrets=[current, old], event_id="evt_1", timestamp=1000)
    assert set(headers) == {
        "X-SM-Signature",
        "X-SM-Event-Id",
        "X-SM-Timestamp",
        "X-SM-Signature-V2",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
    }
    assert headers["X-SM-Signature"] == sign(
        BODY, old
    )  # single-secret receivers: until the grace ends
    assert headers["X-SM-Event-Id"] == headers["webhook-id"] == "evt_1"
    assert headers["X-SM-Timestamp"] == headers["webhook-timestamp"] == "1000"
    v2 = headers["X-SM-Signature-V2"].split(" ")
    assert headers["webhook-signature"] == headers["X-SM-Signature-V2"]
    assert v2 == [
        sign_v2(body=BODY, secret=s, event_id="evt_1", timestamp=1000) for s in (current, old)
    ]
    assert verify(BODY, headers["X-SM-Signature"], old)
    assert not verify(BODY, headers["X-SM-Signature"], current)
    # once the grace is over only the current secret is live, and it makes X-SM-Signature
    after = signature_headers(body=BODY, secrets=[current], event_id="evt_1", timestamp=1000)
    assert after["X-SM-Signature"] == sign(BODY, current)
    # both the new and the rotated-out secret verify V2
    for secret in (current, old):
        assert verify_v2(body=BODY, headers=headers, secrets=secret, now=1000)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(secrets=[], event_id="e", timestamp=1),
        dict(secrets="whsec_x", event_id="e", timestamp=1),
        dict(secrets=["whsec_x"], event_id="e.1", timestamp=1),
        dict(secrets=["whsec_x"], event_id="e\r\nX-Evil: 1", timestamp=1),
        dict(secrets=["whsec_x"], event_id="", timestamp=1),
        dict(secrets=["whsec_x"], event_id="e", timestamp=-1),
        dict(secrets=["whsec_x"], event_id="e", timestamp=1.5),
        dict(secrets=[""], event_id="e", timestamp=1),
    ],
)
def test_signature_headers_rejects_bad_input(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        signature_headers(body=BODY, **kwargs)


def test_verify_rejects_tampering_and_malformed_headers() -> None:
    secret = new_secret()
    good = sign(BODY, secret)
    assert verify(BODY, good, [new_secret(), secret])
    assert not verify(BODY + b" ", good, secret)
    assert not verify(BODY, good.upper(), secret)
    assert not verify(BODY, good[7:], secret)
    assert not verify(BODY, good + "00", secret)
    assert not verify(BODY, "sha256=" + "0" * 64, secret)
    assert not verify(BODY, "", secret)


def test_verify_v2_replay_window_and_tampering() -> None:
    secret = new_secret()
    headers = signature_headers(body=BODY, secrets=[secret], event_id="evt_9", timestamp=10_000)
    assert verify_v2(body=BODY, headers=headers, secrets=secret, now=10_299)
    assert not verify_v2(body=BODY, headers=headers, secrets=secret, now=10_301)
    assert not verify_v2(body=BODY, headers=headers, secrets=secret, now=9_600)
    assert not verify_v2(body=BODY + b"x", headers=headers, secrets=secret, now=10_000)
    replay = dict(headers, **{"X-SM-Timestamp": "10100", "webhook-timestamp": "10100"})
    assert not verify_v2(body=BODY, headers=replay, secrets=secret, now=10_100)
    other_id = dict(headers, **{"X-SM-Event-Id": "evt_8", "webhook-id": "evt_8"})
    assert not verify_v2(body=BODY, headers=other_id, secrets=secret, now=10_000)
    # only the Standard Webhooks spelling, in other case
    std = {k.upper(): v for k, v in headers.items() if k.startswith("webhook-")}
    assert verify_v2(body=BODY, headers=std, secrets=[secret], now=10_000)
    assert not verify_v2(body=BODY, headers={}, secrets=secret, now=10_000)
    junk = dict(headers, **{"X-SM-Signature-V2": "v2,abc nonsense", "webhook-signature": "x"})
    assert not verify_v2(body=BODY, headers=junk, secrets=secret, now=10_000)
