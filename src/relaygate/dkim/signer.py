"""DKIM signing of outgoing messages: the only importer of dkimpy (``dkim``) in relaygate.

Owns the DKIM-Signature header: relaxed/relaxed, rsa-sha256 (plus ed25519-sha256, RFC 8463,
when an Ed25519 key is configured), From over-signed, ``t=`` from an injected clock.

How dkimpy is used (the seam): dkimpy does message parsing (``rfc822_parse``), header selection
and hashing (``hash_headers``), relaxed canonicalisation (``CanonicalizationPolicy``), header
folding (``fold``) and b= stripping (``RE_BTAG``). We assemble the tag list exactly as
``dkim.DKIM.sign``/``gen_header`` do, feed dkimpy's header hashing into a ``hashlib`` object, and
do only the private-key operation on that SHA-256 digest through ``cryptography`` (OpenSSL):
dkimpy's own RSA is pure Python (~10x slower), it re-parses the PEM on every call, its clock is
``time.time()`` and its Ed25519 needs PyNaCl. Nothing in dkimpy is patched, so other users of
dkimpy in the process are unaffected. Output is byte-identical to ``dkim.sign`` with the same key,
header list and timestamp (a unit test holds us to that across dkimpy upgrades).

Holds secrets: the parsed private keys, loaded once at construction, never logged or repr'd.
Trusts nothing in the message it signs: a message dkimpy cannot parse becomes a DkimError.
Thread-safe: ``sign`` keeps no state between calls (hashlib objects are per call; OpenSSL signing
with a shared key is safe), so it may run in a thread pool.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import dkim
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from dkim.canonicalization import (
    CanonicalizationPolicy,
    correct_empty_body,
    strip_trailing_lines,
)

from relaygate.clock import Clock, SystemClock
from relaygate.dkim.keys import (
    ALGORITHMS,
    Algorithm,
    DkimError,
    DkimKey,
    DkimKeyError,
    PrivateKey,
    check_domain,
    check_selector,
    parse_private_key,
    read_private_pem,
)

__all__ = [
    "DEFAULT_SIGNED_HEADERS",
    "DkimError",
    "DkimKeyError",
    "DkimSigner",
    "KeySpec",
    "to_crlf",
]

KeySpec = tuple[str, Algorithm, bytes | Path]
"""(selector, algorithm, private key as PEM bytes or as the path of a PEM file)."""

DEFAULT_SIGNED_HEADERS: tuple[bytes, ...] = (
    b"from",
    b"sender",
    b"reply-to",
    b"to",
    b"cc",
    b"subject",
    b"date",
    b"message-id",
    b"in-reply-to",
    b"references",
    b"mime-version",
    b"content-type",
    b"content-transfer-encoding",
    b"list-id",
    b"list-unsubscribe",
    b"list-unsubscribe-post",
    b"feedback-id",
)
"""Header fields signed when present (each occurrence, in message order)."""

_NEVER_SIGN = frozenset(dkim.DKIM.SHOULD_NOT)  # return-path, received, bcc, dkim-signature...
_POLICY = CanonicalizationPolicy.from_c_value(b"relaxed/relaxed")
_HEADER_NAME = b"DKIM-Signature"
_SIG_ALGORITHM: dict[Algorithm, bytes] = {"rsa": b"rsa-sha256", "ed25519": b"ed25519-sha256"}
_LINE_END = re.compile(rb"\r?\n")
_EMPTY_LINE = re.compile(rb"(\A|\n)\r?\n")  # the empty line that ends the header section


def _parse(message: bytes, *, crlf: bool = False) -> tuple[list[list[bytes]], bytes]:
    """dkimpy's ``rfc822_parse`` result: (header fields, body with CRLF line endings).

    ``rfc822_parse`` splits the whole message into lines and joins the body back with CRLF; only
    the header section needs that, so it gets just the header section, and the body (everything
    after the first empty line) has its line endings converted in one pass. Same result, about
    4 ms less per 100 KB. ``crlf``: the caller knows every line ending is CRLF already.
    """
    end = _EMPTY_LINE.search(message)
    if end is None:
        return dkim.rfc822_parse(message)[0], b""
    headers: list[list[bytes]] = dkim.rfc822_parse(message[: end.end(1)])[0]
    body = message[end.end() :]
    return headers, body if crlf else to_crlf(body)


def to_crlf(message: bytes) -> bytes:
    """``message`` with every line ending (LF or CRLF) as CRLF: the form ``sign`` signs."""
    if message.count(b"\n") == message.count(b"\r\n"):
        return message  # every LF already has its CR (the usual case): nothing to substitute
    return _LINE_END.sub(b"\r\n", message)


def _canonical_body(body: bytes) -> bytes:
    """dkimpy's relaxed body canonicalisation, without its two regular-expression passes when
    they cannot change anything: with no tab, no double space and no space before a line end,
    compressing whitespace and stripping it at line ends are both the identity (byte-identical
    to ``_POLICY.canonicalize_body``; a unit test compares them)."""
    if b"\t" in body or b"  " in body or b" \r\n" in body:
        return bytes(_POLICY.canonicalize_body(body))
    return bytes(correct_empty_body(strip_trailing_lines(body)))


@dataclass(frozen=True, kw_only=True, repr=False)
class _LoadedKey:
    selector: bytes
    algorithm: Algorithm
    private: PrivateKey

    def sign_digest(self, digest: bytes) -> bytes:
        """The signature over the SHA-256 ``digest`` of the canonicalised headers."""
        if isinstance(self.private, rsa.RSAPrivateKey):
            return self.private.sign(digest, padding.PKCS1v15(), Prehashed(hashes.SHA256()))
        # RFC 8463: ed25519-sha256 signs the SHA-256 hash, as PureEdDSA input.
        assert isinstance(self.private, ed25519.Ed25519PrivateKey)
        return self.private.sign(digest)


class DkimSigner:
    """Signs messages of one domain with its active key(s).

    ``keys``: (selector, algorithm, PEM bytes or path) per key; at least one RSA key, at most one
    key per algorithm. One DKIM-Signature is produced per key, in the order given.
    ``headers``: the header field names to sign when present (default DEFAULT_SIGNED_HEADERS);
    must include From; fields that RFC 6376 says not to sign (Received, Return-Path, Bcc,
    DKIM-Signature...) are refused. ``oversign``: fields named once more in h= after their
    occurrences (default From only; must include From), so that adding one breaks the signature.
    ``clock`` gives t= (default the system clock). Keys are parsed once here (DkimKeyError if
    one is bad; ValueError for a wrong argument).
    """

    def __init__(
        self,
        *,
        domain: str,
        keys: Sequence[KeySpec],
        headers: Sequence[bytes] | None = None,
        oversign: Sequence[bytes] = (b"from",),
        clock: Clock | None = None,
    ) -> None:
        self.domain = check_domain(domain)
        self._domain_b = self.domain.encode("ascii")
        self._clock: Clock = clock if clock is not None else SystemClock()
        loaded: list[_LoadedKey] = []
        for selector, algorithm, private in keys:
            if algorithm not in ALGORITHMS:
                raise ValueError(f"unknown DKIM key algorithm: {algorithm!r}")
            if isinstance(private, Path):
                pem = read_private_pem(private)
            elif isinstance(private, bytes):
                pem = private
            else:
                raise TypeError("a private key is given as PEM bytes or as a pathlib.Path")
            loaded.append(
                _LoadedKey(
                    selector=check_selector(selector).encode("ascii"),
                    algorithm=algorithm,
                    private=parse_private_key(pem, expect=algorithm),
                )
            )
        algorithms = [key.algorithm for key in loaded]
        if "rsa" not in algorithms:
            raise ValueError("a DkimSigner needs an RSA key (Ed25519 is only a second signature)")
        if len(set(algorithms)) != len(algorithms):
            raise ValueError("at most one key per algorithm")
        self._keys: tuple[_LoadedKey, ...] = tuple(loaded)
        names = tuple(h.lower() for h in (DEFAULT_SIGNED_HEADERS if headers is None else headers))
        if b"from" not in names:
            raise ValueError("the From header field must be signed (RFC 6376 §5.4)")
        refused = sorted(set(names) & _NEVER_SIGN)
        if refused:
            raise ValueError(f"header fields that must not be signed: {refused!r}")
        self._header_set = frozenset(names)
        self._oversign = tuple(h.lower() for h in oversign)
        if b"from" not in self._oversign:
            raise ValueError("From must be over-signed")
        refused = sorted(set(self._oversign) & _NEVER_SIGN)
        if refused:
            raise ValueError(f"header fields that must not be signed: {refused!r}")

    @classmethod
    def from_keys(
        cls,
        keys: Sequence[DkimKey],
        *,
        headers: Sequence[bytes] | None = None,
        oversign: Sequence[bytes] = (b"from",),
        clock: Clock | None = None,
    ) -> DkimSigner:
        """A signer for stored keys (all of one domain), reading each key file once."""
        domains = {key.domain for key in keys}
        if len(domains) != 1:
            raise ValueError(f"keys must all belong to one domain, got {sorted(domains)!r}")
        return cls(
            domain=domains.pop(),
            keys=[(k.selector, k.algorithm, k.private_path) for k in keys],
            headers=headers,
            oversign=oversign,
            clock=clock,
        )

    @property
    def selectors(self) -> tuple[tuple[str, Algorithm], ...]:
        """(selector, algorithm) of each key, in signing order."""
        return tuple((k.selector.decode("ascii"), k.algorithm) for k in self._keys)

    def __repr__(self) -> str:
        keys = ", ".join(f"{s}:{a}" for s, a in self.selectors)
        return f"DkimSigner(domain={self.domain!r}, keys=[{keys}])"

    def sign(self, message: bytes) -> bytes:
        """The DKIM-Signature header field(s) to prepend to ``message``.

        ``message`` is the complete RFC 5322 message as bytes, with CRLF or LF line endings (mixed
        is allowed): the signature covers the message with every line ending taken as CRLF, so
        it must be sent that way (SMTP requires CRLF anyway; ``to_crlf`` converts). The result
        is one or more folded header fields, each line ending in CRLF. A trailing CRLF on the
        message is optional. DkimError when the message cannot be signed (no From header, a
        header section dkimpy cannot parse).
        """
        return self._sign(message, crlf=False)

    def sign_crlf(self, message: bytes) -> tuple[bytes, bytes]:
        """``(sign(message), to_crlf(message))`` with the line endings looked at once (each
        look is ~0.1 ms per 100 KB). The second item is ``message`` itself when its line
        endings were CRLF already; the message to send is the first item followed by it."""
        crlf = to_crlf(message)
        return self._sign(crlf, crlf=True), crlf

    def _sign(self, message: bytes, *, crlf: bool) -> bytes:
        try:
            headers, body = _parse(message, crlf=crlf)
        except (dkim.DKIMException, IndexError) as exc:  # IndexError: starts with a fold
            raise DkimError(
                f"cannot parse the message header section ({type(exc).__name__})"
            ) from None
        if not any(name.lower() == b"from" for name, _ in headers):
            raise DkimError("the message has no From header field")
        include = self._include_headers(headers)
        canonical_headers = _POLICY.canonicalize_headers(headers)
        bodyhash = base64.b64encode(hashlib.sha256(_canonical_body(body)).digest())
        timestamp = str(int(self._clock.now())).encode("ascii")
        try:
            return b"".join(
                self._signature(key, canonical_headers, include, bodyhash, timestamp)
                for key in self._keys
            )
        except dkim.DKIMException as exc:
            raise DkimError(f"DKIM signing failed ({type(exc).__name__})") from exc

    def _include_headers(self, headers: list[list[bytes]]) -> tuple[bytes, ...]:
        """The h= list: each present signed field in message order, then the over-signed ones.

        Naming a field once more than it occurs makes a verifier hash "no such field" for the
        extra entry, so a field added later (a second From) breaks the signature.
        """
        present = [name.lower() for name, _ in headers if name.lower() in self._header_set]
        return (*present, *self._oversign)

    def _signature(
        self,
        key: _LoadedKey,
        canonical_headers: list[tuple[bytes, bytes]],
        include: tuple[bytes, ...],
        bodyhash: bytes,
        timestamp: bytes,
    ) -> bytes:
        # Tag order, placeholder b= and folding as dkim.DKIM.sign + DomainSigner.gen_header.
        fields = [
            (b"v", b"1"),
            (b"a", _SIG_ALGORITHM[key.algorithm]),
            (b"c", b"relaxed/relaxed"),
            (b"d", self._domain_b),
            (b"i", b"@" + self._domain_b),
            (b"q", b"dns/txt"),
            (b"s", key.selector),
            (b"t", timestamp),
            (b"h", b" : ".join(include)),
            (b"bh", bodyhash),
            (b"b", b"0" * 60),  # forces b= onto its own line so refolding keeps earlier tags
        ]
        value = b"; ".join(b"=".join(f) for f in fields)
        value = dkim.fold(value, namelen=len(_HEADER_NAME), linesep=b"\r\n")
        value = dkim.RE_BTAG.sub(b"\\1", value)
        hasher = hashlib.sha256()
        dkim.hash_headers(
            hasher, _POLICY, canonical_headers, include, (_HEADER_NAME, b" " + value), dict(fields)
        )
        signature = key.sign_digest(hasher.digest())
        fields[-1] = (b"b", base64.b64encode(signature))
        value = b"; ".join(b"=".join(f) for f in fields) + b"\r\n"
        value = dkim.fold(value, namelen=len(_HEADER_NAME), linesep=b"\r\n")
        return _HEADER_NAME + b": " + bytes(value)
