"""DKIM key pairs on disk: generating, storing and loading private keys.

Owns the key file layout ``<directory>/<domain>/<selector>.<alg>.pem`` and its permissions:
directories are created 0700, key files are written 0600 and are never group- or world-readable,
not even for a moment (the file is created with ``O_CREAT|O_EXCL`` and mode 0600, written, fsynced
and then linked into place, so a reader sees either no key or the whole key).

Holds secrets: a private key is read from disk, parsed, and handed to the signer as an opaque
``cryptography`` object. No value here carries private material in its repr, and no error message
quotes key bytes. It trusts the key directory (its owner can replace keys); it refuses key files
that any user on the host may read.
"""

from __future__ import annotations

import base64
import os
import re
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import get_args

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from relaygate.errors import PermanentError
from relaygate.store.models import Algorithm as Algorithm
from relaygate.store.models import StoredKey

PrivateKey = rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey

ALGORITHMS: tuple[Algorithm, ...] = get_args(Algorithm)
MIN_RSA_BITS = 1024
"""RFC 8301: signers MUST use at least 1024 bits (and SHOULD use 2048, the default here)."""

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_DOMAIN_RE = re.compile(rf"{_LABEL}(?:\.{_LABEL})+")
_SELECTOR_RE = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")


class DkimError(PermanentError):
    """DKIM signing or key handling failed; retrying with the same input will fail again."""


class DkimKeyError(DkimError):
    """A DKIM private key is missing, unreadable, malformed, too weak or stored insecurely."""


@dataclass(frozen=True, kw_only=True)
class DkimKey:
    """A stored DKIM key: where its private half lives and what to publish in DNS.

    ``public_key_b64`` is the ``p=`` value of the TXT record: the base64 DER SubjectPublicKeyInfo
    for RSA, the raw 32-byte public key for Ed25519 (RFC 8463). Holds no private material.
    """

    domain: str
    selector: str
    algorithm: Algorithm
    private_path: Path
    public_key_b64: str


def from_stored(key: StoredKey) -> DkimKey:
    """The signing view of a stored key row."""
    return DkimKey(
        domain=key.domain,
        selector=key.selector,
        algorithm=key.algorithm,
        private_path=key.private_path,
        public_key_b64=key.public_key,
    )


def check_domain(domain: str) -> str:
    """``domain`` lower-cased, or ValueError unless it is an ASCII (A-label) DNS name."""
    value = domain.strip().rstrip(".").lower()
    if len(value) > 253 or not _DOMAIN_RE.fullmatch(value):
        raise ValueError(f"not a DNS domain name (use the A-label form): {domain!r}")
    return value


def check_selector(selector: str) -> str:
    """``selector`` lower-cased, or ValueError unless it is a DKIM selector (dot-separated labels)."""
    value = selector.strip().lower()
    if len(value) > 63 or not _SELECTOR_RE.fullmatch(value):
        raise ValueError(f"not a DKIM selector: {selector!r}")
    return value


def key_path(directory: Path, *, domain: str, selector: str, algorithm: Algorithm) -> Path:
    """Where the private key of (domain, selector, algorithm) is stored under ``directory``."""
    if algorithm not in ALGORITHMS:
        raise ValueError(f"unknown DKIM key algorithm: {algorithm!r}")
    name = f"{check_selector(selector)}.{algorithm}.pem"
    return Path(directory) / check_domain(domain) / name


def generate_key(
    directory: Path,
    *,
    domain: str,
    selector: str,
    algorithm: Algorithm = "rsa",
    bits: int = 2048,
) -> DkimKey:
    """Create a new key pair and store its private key at ``key_path(...)`` with mode 0600.

    Refuses (DkimKeyError) to replace an existing key file: a selector's key is published in DNS,
    so a new key gets a new selector. ``bits`` applies to RSA only.
    """
    path = key_path(directory, domain=domain, selector=selector, algorithm=algorithm)
    private: PrivateKey
    if algorithm == "rsa":
        if bits < MIN_RSA_BITS:
            raise ValueError(f"RSA keys must have at least {MIN_RSA_BITS} bits, not {bits}")
        private = rsa.generate_private_key(public_exponent=65537, key_size=bits)
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,  # PKCS#1, what opendkim/dkimpy read
            serialization.NoEncryption(),
        )
    else:
        private = ed25519.Ed25519PrivateKey.generate()
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    _make_private_dirs(path.parent)
    _write_exclusive(path, pem)
    return DkimKey(
        domain=path.parent.name,
        selector=check_selector(selector),
        algorithm=algorithm,
        private_path=path,
        public_key_b64=public_key_b64(private),
    )


def load_key(path: Path) -> DkimKey:
    """The DkimKey stored at ``path`` (laid out as ``.../<domain>/<selector>.<alg>.pem``)."""
    path = Path(path)
    match = re.fullmatch(r"(.+)\.(rsa|ed25519)\.pem", path.name)
    if match is None:
        raise DkimKeyError(f"key file name is not <selector>.<rsa|ed25519>.pem: {path}")
    try:
        domain = check_domain(path.parent.name)
        selector = check_selector(match.group(1))
    except ValueError as exc:
        raise DkimKeyError(f"key file is not at <domain>/<selector>.<alg>.pem: {path}") from exc
    algorithm: Algorithm = "rsa" if match.group(2) == "rsa" else "ed25519"
    private = parse_private_key(read_private_pem(path), expect=algorithm)
    return DkimKey(
        domain=domain,
        selector=selector,
        algorithm=algorithm,
        private_path=path,
        public_key_b64=public_key_b64(private),
    )


def read_private_pem(path: Path) -> bytes:
    """The bytes of a private key file; DkimKeyError if unreadable or readable by any user."""
    try:
        with open(path, "rb") as handle:
            mode = os.fstat(handle.fileno()).st_mode
            if not stat.S_ISREG(mode):
                raise DkimKeyError(f"key file is not a regular file: {path}")
            if mode & 0o007:
                raise DkimKeyError(
                    f"key file {path} is accessible to other users "
                    f"(mode {stat.S_IMODE(mode):04o}); chmod 600 it"
                )
            return handle.read()
    except OSError as exc:
        raise DkimKeyError(f"cannot read key file {path}: {exc.strerror}") from exc


def parse_private_key(pem: bytes, *, expect: Algorithm | None = None) -> PrivateKey:
    """Parse an unencrypted PEM private key (PKCS#1 or PKCS#8 RSA, PKCS#8 Ed25519).

    DkimKeyError when it is not such a key, is of another algorithm than ``expect``, or is an
    RSA key shorter than MIN_RSA_BITS. The error never quotes the key.
    """
    try:
        private = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise DkimKeyError("not an unencrypted PEM RSA or Ed25519 private key") from None
    if isinstance(private, rsa.RSAPrivateKey):
        algorithm: Algorithm = "rsa"
        if private.key_size < MIN_RSA_BITS:
            raise DkimKeyError(f"RSA key has {private.key_size} bits, fewer than {MIN_RSA_BITS}")
    elif isinstance(private, ed25519.Ed25519PrivateKey):
        algorithm = "ed25519"
    else:
        raise DkimKeyError(f"unsupported private key type {type(private).__name__}")
    if expect is not None and algorithm != expect:
        raise DkimKeyError(f"expected an {expect} key, found an {algorithm} key")
    return private


def public_key_b64(private: PrivateKey) -> str:
    """The ``p=`` value for the public half of ``private``."""
    if isinstance(private, rsa.RSAPrivateKey):
        der = private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    else:
        der = private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
    return base64.b64encode(der).decode("ascii")


def _make_private_dirs(path: Path) -> None:
    """Create ``path`` and missing parents with mode 0700 (existing directories are left alone)."""
    missing: list[Path] = []
    current = path
    while not current.exists():
        missing.append(current)
        current = current.parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, 0o700)
        except FileExistsError:
            continue
        os.chmod(directory, 0o700)  # the umask may have removed bits; never added any


def _write_exclusive(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` (mode 0600) atomically; DkimKeyError if ``path`` exists."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        try:
            os.fchmod(fd, 0o600)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)  # unlike rename, never replaces an existing key
        except FileExistsError:
            raise DkimKeyError(f"a key already exists at {path}; use a new selector") from None
    finally:
        os.unlink(tmp)
    dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
