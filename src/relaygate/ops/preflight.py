"""What must hold on this host before relaygate serves: an initialised, writable state
directory, a server secret worth the name, TLS files that load.

Owns the checks ``check-config`` and ``serve`` share; each returns every problem it finds as
one line naming the file and what to do, never an exception. ``settings`` (the file's syntax
and values) is checked before; this module looks at the files the settings point to.

Writability is tried, not inferred from permission bits: root passes every permission check,
yet a read-only file system (``ProtectSystem=``, a read-only mount) still refuses its writes.
"""

from __future__ import annotations

import contextlib
import os
import ssl
from collections.abc import Sequence
from pathlib import Path

from relaygate.settings import ROLES, Settings

__all__ = ["MIN_SECRET_BYTES", "problems", "store_problems", "tls_problems", "writable_problems"]

#: The server secret signs VERP and tracking tokens: HMAC keys shorter than this are weak.
MIN_SECRET_BYTES = 32
_MAX_SECRET_FILE = 64 * 1024


def _init_hint(settings: Settings) -> str:
    return f"run `relaygate --config {settings.path} init`"


def store_problems(settings: Settings) -> list[str]:
    """The state directory, store and secret that ``init`` creates."""
    state = settings.state_dir
    if not state.exists():
        return [
            f"state_dir {state}: no such directory ({_init_hint(settings)}, or correct state_dir)"
        ]
    if not state.is_dir():
        return [f"state_dir {state}: not a directory"]
    found: list[str] = []
    if not settings.database.is_file():
        found.append(
            f"state_dir {state}: no relaygate store in it ({settings.database.name}):"
            f" {_init_hint(settings)}, or correct state_dir"
        )
    secret = settings.secret_key_file
    try:
        if secret.exists() and not secret.is_file():
            raise IsADirectoryError(0, "not a regular file")
        with secret.open("rb") as f:
            size = len(f.read(_MAX_SECRET_FILE).strip())
    except FileNotFoundError:
        found.append(f"secret_key_file {secret}: missing ({_init_hint(settings)}: it creates one)")
    except OSError as exc:
        found.append(f"secret_key_file {secret}: cannot read ({exc.strerror or exc})")
    else:
        if size < MIN_SECRET_BYTES:
            found.append(
                f"secret_key_file {secret}: {size} byte{'' if size == 1 else 's'}; at least"
                f" {MIN_SECRET_BYTES} are needed"
                " (init writes 64 random hex characters)"
            )
    return found


def _try_write(directory: Path) -> str | None:
    probe = directory / f".relaygate-write-probe.{os.getpid()}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return None
    except OSError as exc:
        return exc.strerror or str(exc)
    os.close(fd)
    with contextlib.suppress(OSError):
        probe.unlink()
    return None


def writable_problems(settings: Settings, roles: Sequence[str] = ROLES) -> list[str]:
    """The state directory and the store can be written (and the capture directory, if used)."""
    found: list[str] = []
    reason = _try_write(settings.state_dir)
    if reason is not None:
        found.append(
            f"state_dir {settings.state_dir}: not writable ({reason}); relaygate writes its"
            " store, its journal and run/ there"
        )
    elif settings.database.exists():
        try:
            os.close(os.open(settings.database, os.O_RDWR))
        except OSError as exc:
            found.append(f"{settings.database}: not writable ({exc.strerror or exc})")
    if settings.delivery.mode == "capture" and "relay" in roles:
        capture = settings.capture_dir
        try:
            capture.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            found.append(f"delivery.capture_dir {capture}: cannot create ({exc.strerror or exc})")
        else:
            reason = _try_write(capture)
            if reason is not None:
                found.append(f"delivery.capture_dir {capture}: not writable ({reason})")
    return found


def _readable(key: str, value: str) -> str | None:
    path = Path(value)
    if not path.exists():
        return f"{key} {value}: no such file"
    if not path.is_file():
        return f"{key} {value}: not a file"
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        return f"{key} {value}: cannot read ({exc.strerror or exc})"
    return None


def tls_problems(settings: Settings, roles: Sequence[str] = ROLES) -> list[str]:
    """The SMTP certificate and key load as a pair; the smarthost CA file loads."""
    found: list[str] = []
    smtp = settings.smtp
    if "smtp" in roles and smtp.tls_cert and smtp.tls_key:
        missing = [
            p
            for p in (
                _readable("smtp.tls_cert", smtp.tls_cert),
                _readable("smtp.tls_key", smtp.tls_key),
            )
            if p
        ]
        found.extend(missing)
        if not missing:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            try:
                context.load_cert_chain(smtp.tls_cert, smtp.tls_key)
            except (ssl.SSLError, OSError, ValueError) as exc:
                found.append(
                    f"smtp.tls_cert {smtp.tls_cert}, smtp.tls_key {smtp.tls_key}: not a PEM"
                    f" certificate chain and its private key ({_ssl_reason(exc)})"
                )
    ca = settings.delivery.smarthost_ca_file
    if ca and ({"relay", "http"} & set(roles)):
        problem = _readable("delivery.smarthost_ca_file", ca)
        if problem:
            found.append(problem)
        else:
            try:
                ssl.create_default_context(cafile=ca)
            except (ssl.SSLError, OSError, ValueError) as exc:
                found.append(
                    f"delivery.smarthost_ca_file {ca}: no PEM certificate in it ({_ssl_reason(exc)})"
                )
    return found


def _ssl_reason(exc: Exception) -> str:
    reason = getattr(exc, "reason", None)
    return str(reason or exc.__class__.__name__).lower().replace("_", " ")


def problems(settings: Settings, roles: Sequence[str] = ROLES) -> list[str]:
    """Every problem that would stop ``roles`` from serving with ``settings`` on this host."""
    found = store_problems(settings)
    if settings.state_dir.is_dir():
        found += writable_problems(settings, roles)
    return found + tls_problems(settings, roles)
