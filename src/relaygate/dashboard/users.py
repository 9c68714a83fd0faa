"""Dashboard user actions — the one code path for ``relaygate user …`` and the operator's
Users page: create (argon2id hash), disable (ends every session at once), enable, reset the
password (ends every session). An account user's changes are recorded in that account's audit
log (``who``: ``cli`` or ``user:<id>`` of the operator); an operator has no account, so changes to
operators are only logged.
"""

from __future__ import annotations

import logging

from relaygate.dashboard import passwords
from relaygate.errors import Conflict, Invalid, NotFound
from relaygate.manage import Actor
from relaygate.manage.audit import record
from relaygate.store import Store
from relaygate.store.models import User

log = logging.getLogger("relaygate.dashboard")


def _audit(store: Store, who: str, address: str, user: User, action: str) -> None:
    log.info(f"dashboard {action}", extra={"user_id": user.id, "by": who})
    if user.account_id is not None:
        actor = Actor(account_id=user.account_id, who=who, address=address)
        record(store, actor, action, f"user:{user.id}", {"email": user.email})


def find(store: Store, ref: str) -> User:
    """A user by id or e-mail address."""
    found = store.users.get(int(ref)) if ref.isdigit() else store.users.by_email(ref)
    if found is None:
        raise NotFound(f"no user {ref}")
    return found


def create_user(
    store: Store,
    who: str,
    *,
    email: str,
    password: str,
    account_id: int | None,
    address: str = "",
) -> User:
    """A new user: an operator when ``account_id`` is None, else that account's user."""
    address_text = email.strip().lower()
    if not address_text or "@" not in address_text or len(address_text) > 254:
        raise Invalid("email", f"{email!r} is not an e-mail address")
    if store.users.by_email(address_text) is not None:
        raise Conflict(f"a user {address_text} exists already")
    passwords.check_new(password, email=address_text)
    user = store.users.create(
        address_text,
        account_id=account_id,
        operator=account_id is None,
        password_hash=passwords.hash_password(password),
    )
    _audit(store, who, address, user, "user.create")
    return user


def set_disabled(store: Store, who: str, user: User, disabled: bool, *, address: str = "") -> bool:
    changed = store.users.disable(user.id) if disabled else store.users.enable(user.id)
    if changed:
        _audit(store, who, address, user, "user.disable" if disabled else "user.enable")
    return changed


def reset_password(
    store: Store, who: str, user: User, password: str, *, clear_two_factor: bool = False
) -> int:
    """Set a new password; every session of the user ends. Returns how many ended."""
    passwords.check_new(password, email=user.email)
    store.users.set_password(user.id, passwords.hash_password(password))
    if clear_two_factor:
        store.users.set_totp(user.id, "")
    ended = store.sessions.end_all_of(user.id)
    _audit(store, who, "", user, "user.reset_password")
    return ended
