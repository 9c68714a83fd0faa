"""Sign once: each message is DKIM-signed before its first delivery attempt, and the signed bytes
replace the stored body, so every attempt and every retry (by any worker) sends the same bytes.
When the admitted body is signed as it is (CRLF line endings, the usual case), the store is
given the signature as a prefix to keep in front of it (``PreparedBody.prefix``) instead of a
second copy of the whole message.

The signed bytes are stored in the transaction that records the first attempt's outcome (one
commit per message, not two): ``prepare`` returns them with a ``PreparedBody`` for the worker to
pass to ``Queue.record``, and until that commit the signer keeps them in memory, so a second
transaction of the same message (another destination domain) sends the very same bytes. The
first stored version wins; an attempt cut short by a crash before its outcome was recorded is
signed again on the next one (its outcome was never recorded, so no retry of it exists).

Keys come from the domain's active keys (``DkimKeys.signing``): none (a domain without
keys, or whose key was found unpublished) means the message goes out unsigned, and that choice
is made final just the same. The RSA operation runs in a signing thread so the event loop never stalls;
each key set is loaded once (PEM parsing is slow) and cached. A domain's active key set is read
from the store at most once per ``keys_ttl`` seconds (1 s), so a rotation or a key found
unpublished takes effect within a second, without a query per message.

Trust: this module (with the relay role) is the only reader of DKIM private keys.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

from relaygate.dkim.keys import DkimKey, from_stored
from relaygate.dkim.signer import DkimError, DkimSigner
from relaygate.store import Store
from relaygate.store.models import Claimed, PreparedBody

log = logging.getLogger("relaygate.relay")

KeySource = Callable[[Store, str], list[DkimKey]]


def active_keys(store: Store, domain: str) -> list[DkimKey]:
    """The keys the store says sign mail from ``domain`` now (``DkimKeys.signing``)."""
    return [from_stored(k) for k in store.dkim_keys.signing(domain)]


@dataclass(frozen=True, kw_only=True, repr=False)
class Body:
    """The bytes to send, and the final body to store with the outcome (None: stored already)."""

    data: bytes
    save: PreparedBody | None = None


class BodySource(Protocol):
    async def prepare(self, claimed: Claimed) -> Body: ...

    def saved(self, prepared: PreparedBody) -> None: ...


_SignerKey = tuple[str, tuple[tuple[str, str], ...]]


class MessageSigner:
    def __init__(
        self,
        store: Store,
        *,
        keys_for: KeySource = active_keys,
        max_cached: int = 1000,
        keys_ttl: float = 1.0,
    ) -> None:
        self.store = store
        self.keys_for = keys_for
        self.max_cached = max_cached
        self.keys_ttl = keys_ttl
        # One signing thread: the RSA operation releases the GIL, dkimpy's canonicalisation
        # does not, so more threads would only contend with the event loop for the GIL.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="relaygate-dkim")
        # domain → (read at, its keys, the signer cache key for them)
        self._keys: dict[str, tuple[float, list[DkimKey], _SignerKey]] = {}
        # One loading task per key set: concurrent first messages of a domain share it instead
        # of each parsing the PEM again (~36 ms of CPU apiece).
        self._signers: dict[_SignerKey, asyncio.Future[DkimSigner]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        # signed, sent or being sent, outcome not committed yet: variant → body
        self._unsaved: dict[str, PreparedBody] = {}
        self.max_unsaved = 100_000
        self.signed = 0
        self.unsigned = 0

    async def prepare(self, claimed: Claimed) -> Body:
        """The bytes to send for ``claimed``'s message, signing them first if nobody has; then
        ``save`` is set and the caller stores it with the attempt's outcome and calls ``saved``."""
        ordinal = claimed.ordinal if claimed.tracked else None
        variant = f"{claimed.message_id}#{ordinal}"
        data, ready = self._ready(variant, claimed.message_id, ordinal)
        if ready is not None:
            return ready
        lock = self._locks.setdefault(variant, asyncio.Lock())
        waited = lock.locked()
        try:
            async with lock:
                if waited:  # another transaction of this message was signing it
                    data, ready = self._ready(variant, claimed.message_id, ordinal)
                    if ready is not None:
                        return ready
                prefix, rest = await self._sign(claimed, data)
                prepared = PreparedBody(
                    message_id=claimed.message_id,
                    ordinal=ordinal,
                    data=prefix + rest,
                    # the stored body unchanged (the usual case: its line endings were CRLF
                    # already): the store need only keep the signature in front of it
                    prefix=prefix if rest is data else None,
                )
                signed = prepared.data
                if len(self._unsaved) >= self.max_unsaved:
                    self._unsaved.clear()  # only leaks (a transaction that never recorded) pile up
                self._unsaved[variant] = prepared
                return Body(data=signed, save=prepared)
        finally:
            if not lock.locked():
                self._locks.pop(variant, None)

    def _ready(
        self, variant: str, message_id: str, ordinal: int | None
    ) -> tuple[bytes, Body | None]:
        """The final body if one exists (signed here, not yet stored; or stored), else the
        stored body still to be signed."""
        unsaved = self._unsaved.get(variant)
        if unsaved is not None:
            return unsaved.data, Body(data=unsaved.data, save=unsaved)
        data, final = self.store.messages.body_for_delivery(message_id, ordinal)
        return data, (Body(data=data) if final else None)

    def saved(self, prepared: PreparedBody) -> None:
        """``prepared`` is committed: later transactions read it from the store."""
        variant = f"{prepared.message_id}#{prepared.ordinal}"
        if self._unsaved.get(variant) is prepared:
            del self._unsaved[variant]

    def _active(self, domain: str) -> tuple[list[DkimKey], _SignerKey]:
        now = asyncio.get_running_loop().time()
        hit = self._keys.get(domain)
        if hit is not None and now - hit[0] < self.keys_ttl:
            return hit[1], hit[2]
        keys = self.keys_for(self.store, domain)
        cache_key = (domain, tuple((k.selector, str(k.private_path)) for k in keys))
        if len(self._keys) >= self.max_cached:
            self._keys.clear()
        self._keys[domain] = (now, keys, cache_key)
        return keys, cache_key

    async def _sign(self, claimed: Claimed, data: bytes) -> tuple[bytes, bytes]:
        """(the DKIM-Signature field(s) or b"", the body to follow them: ``data`` itself unless
        its line endings had to become CRLF)."""
        keys, cache_key = self._active(claimed.sender_domain)
        if not keys:
            self.unsigned += 1
            return b"", data
        loading = self._signers.get(cache_key)
        if loading is None:
            if len(self._signers) >= self.max_cached:
                self._signers.clear()
            loading = asyncio.ensure_future(
                asyncio.get_running_loop().run_in_executor(
                    self._executor, DkimSigner.from_keys, keys
                )
            )
            self._signers[cache_key] = loading
        try:
            try:
                signer = await asyncio.shield(loading)
            except asyncio.CancelledError:
                raise
            except Exception:
                if loading.done() and self._signers.get(cache_key) is loading:
                    del self._signers[cache_key]  # a fixed key file is picked up next time
                raise
            header, crlf = await asyncio.get_running_loop().run_in_executor(
                self._executor, signer.sign_crlf, data
            )
        except DkimError as exc:
            log.warning(
                "not signed", extra={"msg_id": claimed.message_id, "reason": str(exc)[:200]}
            )
            self.unsigned += 1
            return b"", data
        self.signed += 1
        return header, crlf
