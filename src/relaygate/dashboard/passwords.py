"""Dashboard passwords: argon2id hashes (argon2-cffi) and the rule a new password must meet.

Trust: a password arrives here only to be hashed or checked, and never leaves; nothing here
logs. Hashing costs ~50 ms of CPU by design: call these off the event loop. ``check`` against a
user that does not exist still spends one verification (``DUMMY``), so the answer's timing does
not tell whether an address has an account.
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from relaygate.errors import RequestError

__all__ = ["MAX_LENGTH", "MIN_LENGTH", "check", "check_new", "hash_password", "needs_rehash"]

#: NIST SP 800-63B: at least 8 characters, allow at least 64; we ask 10 and allow 1024.
MIN_LENGTH = 10
MAX_LENGTH = 1024

_hasher = PasswordHasher()  # argon2id, RFC 9106's second recommended parameter set
DUMMY = _hasher.hash("relaygate: no such user")


def check_new(password: str, *, email: str = "") -> str:
    """``password`` when it may be used; 400 naming the rule it breaks."""
    if len(password) < MIN_LENGTH:
        raise RequestError(400, f"a password needs at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise RequestError(400, f"a password may have at most {MAX_LENGTH} characters")
    if email and password.strip().lower() == email.strip().lower():
        raise RequestError(400, "a password must not be the e-mail address")
    return password


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check(password_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches ``password_hash`` (None: no such user, still one verify)."""
    if len(password) > MAX_LENGTH:
        return False
    try:
        return bool(_hasher.verify(password_hash or DUMMY, password)) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """Whether the hash was made with weaker parameters than today's."""
    try:
        return _hasher.check_needs_rehash(password_hash)
    except InvalidHashError:
        return True
