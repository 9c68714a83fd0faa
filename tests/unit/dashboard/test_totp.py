"""TOTP against RFC 6238's own test vectors (SHA-1, the last six of its eight digits), the drift
window, malformed input, one use per step."""

from __future__ import annotations

import base64

import pytest

from relaygate.dashboard import totp

SECRET = base64.b32encode(b"12345678901234567890").decode()  # RFC 6238 appendix B


@pytest.mark.parametrize(
    ("when", "code"),
    [
        (59, "287082"),
        (1111111109, "081804"),
        (1111111111, "050471"),
        (1234567890, "005924"),
        (2000000000, "279037"),
        (20000000000, "353130"),
    ],
)
def test_rfc6238_vectors(when: int, code: str) -> None:
    assert totp.code_at(SECRET, when) == code
    assert totp.verify(SECRET, code, when) == when // 30


def test_one_step_of_drift_either_side_and_no_more() -> None:
    code = totp.code_at(SECRET, 1_000_000_000)
    assert totp.verify(SECRET, code, 1_000_000_000 + 30) is not None
    assert totp.verify(SECRET, code, 1_000_000_000 - 30) is not None
    assert totp.verify(SECRET, code, 1_000_000_000 + 61) is None


@pytest.mark.parametrize("code", ["", "12345", "1234567", "abcdef", "12 34 5x"])
def test_malformed_codes_are_refused(code: str) -> None:
    assert totp.verify(SECRET, code, 59) is None


def test_bad_secret_is_refused_not_raised() -> None:
    assert totp.verify("not base32!!", "287082", 59) is None
    assert totp.verify("", "287082", 59) is None


def test_new_secret_and_uri() -> None:
    secret = totp.new_secret()
    assert len(base64.b32decode(secret)) == 20
    uri = totp.otpauth_uri(secret, account="ann@acme.test")
    assert uri.startswith("otpauth://totp/relaygate%3Aann%40acme.test?secret=")


def test_guard_accepts_a_step_once() -> None:
    guard = totp.TotpGuard()
    assert guard.accept(1, 100)
    assert not guard.accept(1, 100) and not guard.accept(1, 99)
    assert guard.accept(2, 100) and guard.accept(1, 101)
