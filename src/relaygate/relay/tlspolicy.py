"""How much TLS outbound SMTP insists on, globally and per destination domain.

    none           never STARTTLS (a smarthost on a trusted link)
    opportunistic  STARTTLS when offered, certificate not checked; if the handshake fails the
                   same address is retried once in plaintext (Postfix's ``may``)
    required       TLS or no delivery (defer); certificate not checked (Postfix's ``encrypt``)
    verified       TLS with the certificate chain and the host name (the MX or smarthost name,
                   never the IP address) verified against the trust store (Postfix's ``secure``)

The trust store for ``verified`` is the system's unless a context is given (tests give one that
trusts only their own CA). This module holds no secrets and trusts its configuration.
"""

from __future__ import annotations

import functools
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class TlsMode(StrEnum):
    NONE = "none"
    OPPORTUNISTIC = "opportunistic"
    REQUIRED = "required"
    VERIFIED = "verified"


@functools.cache
def _unverified_context() -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


@functools.cache
def _system_verifying_context() -> ssl.SSLContext:
    return ssl.create_default_context(ssl.Purpose.SERVER_AUTH)


@dataclass(frozen=True, kw_only=True)
class TlsPolicy:
    """One TLS requirement and, for ``verified``, the trust store to verify against."""

    mode: TlsMode = TlsMode.OPPORTUNISTIC
    trust: ssl.SSLContext | None = field(default=None, compare=False)

    @property
    def attempts_tls(self) -> bool:
        return self.mode is not TlsMode.NONE

    @property
    def requires_tls(self) -> bool:
        return self.mode in (TlsMode.REQUIRED, TlsMode.VERIFIED)

    @property
    def verifies(self) -> bool:
        return self.mode is TlsMode.VERIFIED

    def client_context(self) -> ssl.SSLContext:
        """The client-side SSL context this policy handshakes with."""
        if self.mode is TlsMode.VERIFIED:
            ctx = self.trust or _system_verifying_context()
            if ctx.verify_mode != ssl.CERT_REQUIRED or not ctx.check_hostname:
                raise ValueError("a verified TLS policy needs a context that verifies")
            return ctx
        return _unverified_context()


@dataclass(frozen=True, kw_only=True)
class TlsPolicies:
    """The global default plus per-domain overrides (exact domain, or ``.suffix`` for subdomains)."""

    default: TlsPolicy = field(default_factory=TlsPolicy)
    per_domain: Mapping[str, TlsPolicy] = field(default_factory=dict)

    def for_domain(self, domain: str) -> TlsPolicy:
        name = domain.rstrip(".").lower()
        exact = self.per_domain.get(name)
        if exact is not None:
            return exact
        best: tuple[int, TlsPolicy] | None = None
        for key, policy in self.per_domain.items():
            suffix = key.lower()
            matches = suffix.startswith(".") and name.endswith(suffix)
            if matches and (best is None or len(suffix) > best[0]):
                best = (len(suffix), policy)
        return best[1] if best else self.default
