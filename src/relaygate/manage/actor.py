"""Who performs a management action: the ``Actor`` every action takes."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from relaygate.policy import SCOPES, check_scope
from relaygate.store.models import ApiKey

ADMIN = "account:admin"
"""The scope every management action needs."""


@dataclass(frozen=True, kw_only=True)
class Actor:
    """An account's key, dashboard user or the operator's command line, acting on that account.

    ``who`` is what the audit log shows: ``key:<id>``, ``user:<id>`` or ``cli``. ``address`` is
    the client's address (empty from the command line). ``scopes`` are what the actor holds:
    actions need ``account:admin``, and a new key gets only scopes its creator holds."""

    account_id: int
    who: str
    address: str = ""
    scopes: frozenset[str] = frozenset(SCOPES)

    @classmethod
    def cli(cls, account_id: int) -> Actor:
        """The operator at the command line: every scope, no address."""
        return cls(account_id=account_id, who="cli")

    @classmethod
    def of_key(cls, key: ApiKey, address: str = "") -> Actor:
        """An API key acting on its own account from ``address``."""
        return cls(
            account_id=key.account_id,
            who=f"key:{key.id}",
            address=address,
            scopes=frozenset(key.scopes),
        )

    @classmethod
    def of_user(
        cls, user_id: int | str, account_id: int, address: str = "", scopes: Iterable[str] = SCOPES
    ) -> Actor:
        """A dashboard user acting on ``account_id`` from ``address``."""
        return cls(
            account_id=account_id,
            who=f"user:{user_id}",
            address=address,
            scopes=frozenset(scopes),
        )

    @property
    def source(self) -> str:
        """Where a change came from, as the store records it: ``operator`` (the command line),
        ``api`` (a key) or ``dashboard`` (a user)."""
        if self.who == "cli":
            return "operator"
        return "dashboard" if self.who.startswith("user:") else "api"

    def require(self, scope: str = ADMIN) -> None:
        """``Forbidden`` (403) unless the actor holds ``scope``."""
        check_scope(self.scopes, scope)
