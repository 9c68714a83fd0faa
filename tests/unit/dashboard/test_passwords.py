"""argon2id hashes: checked, refused, never the password itself; the new-password rule."""

from __future__ import annotations

import pytest

from relaygate.dashboard import passwords
from relaygate.errors import RequestError


def test_hash_and_check() -> None:
    h = passwords.hash_password("correct horse battery")
    assert h.startswith("$argon2id$") and "correct" not in h
    assert passwords.check(h, "correct horse battery")
    assert not passwords.check(h, "correct horse batterY")
    assert not passwords.check(None, "correct horse battery")  # no user: still false
    assert not passwords.check("not a hash", "x")
    assert not passwords.check(h, "x" * 5000)
    assert not passwords.needs_rehash(h) and passwords.needs_rehash("not a hash")


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("short", "at least 10"),
        ("x" * 1025, "at most 1024"),
        ("Ann@Acme.test", "must not be the e-mail address"),
    ],
)
def test_new_password_rule(password: str, problem: str) -> None:
    with pytest.raises(RequestError) as caught:
        passwords.check_new(password, email="ann@acme.test")
    assert problem in caught.value.detail and caught.value.status == 400
