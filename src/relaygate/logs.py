"""Logging set-up: one JSON object per line on stdout for journald, and secret redaction.

Owns: the root logger's handler, the JSON and text line formats, and the redaction filter.

A JSON line looks like::

    {"ts": "2026-05-19T13:42:11.123Z", "level": "info", "logger": "relaygate.relay",
     "msg_id": "msg_...", "msg": "delivered", "rcpt_domain": "example.com"}

Fields passed with ``extra={...}`` become top-level keys (``msg_id`` first, after ``logger``).
In text mode a line about a message starts with its ``msg_id`` (Postfix style).

Holds secrets in transit: anything that looks like an API key (``sk_live_…``, in any letter
case, or its base64), a webhook secret (``whsec_…``), SMTP ``AUTH`` data, an
``Authorization``/``X-API-Key`` header, a URL password or a ``password=``/``secret=``/``token=``
value is masked in the message, its arguments, the extra
fields (keys named like secrets are masked whole) and exception text, before any handler
writes it. Redaction is a safety net; code still must not log secrets on purpose.
"""

from __future__ import annotations

import json as _json
import logging
import os
import re
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TextIO

__all__ = [
    "REDACTED",
    "JsonFormatter",
    "RedactingFilter",
    "TextFormatter",
    "configure_logging",
    "redact",
    "under_journald",
]

REDACTED = "[REDACTED]"

# Loggers held at WARNING at least: aiosmtpd's echoes wire data (commands, AUTH continuations,
# message lines); httpx and httpcore log a line per request with its URL (one per webhook POST,
# and a URL's query may carry a token).
_QUIET_LOGGERS = ("mail.log", "httpx", "httpcore")

# Extra fields libraries add for their own consoles, never written: uvicorn's ``color_message``
# repeats the message with ANSI colour escapes.
_IGNORED_EXTRAS = frozenset({"color_message"})

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_RECORD_ATTRS = frozenset(
    vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None)).keys()
) | {"message", "asctime", "taskName"}

_SECRET_KEY_RE = re.compile(
    r"(?i)^(?:.*[_-])?(?:password|passwd|pwd|secret|api[_-]?key|apikey|token|authorization|auth|"
    r"auth[_-]?data|credentials?|private[_-]?key)$"
)

# (pattern, replacement) applied in order to every string.
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # API keys and webhook secrets, wherever they appear (in any case: aiosmtpd upper-cases an
    # unrecognised command).
    (re.compile(r"(?i)(sk_(?:live|test)_)[A-Za-z0-9]+"), r"\1" + REDACTED),
    (re.compile(r"(whsec_)[A-Za-z0-9+/=_-]+"), r"\1" + REDACTED),
    # Private keys pasted into a message.
    (
        re.compile(
            r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)", re.S
        ),
        "-----" + REDACTED + " PRIVATE KEY-----",
    ),
    # SMTP AUTH with an initial response, e.g. "AUTH PLAIN AGFsaWNlAHMzY3JldA==".
    (
        re.compile(r"(?i)\b(AUTH\s+(?:PLAIN|LOGIN|CRAM-MD5|XOAUTH2|OAUTHBEARER)\s+)\S+"),
        r"\1" + REDACTED,
    ),
    # HTTP credentials in headers.
    (
        re.compile(r"(?i)\b(Authorization\s*[:=]\s*[\"']?(?:Bearer|Basic|Digest)?\s*)[^\s\"',;]+"),
        r"\1" + REDACTED,
    ),
    (re.compile(r"(?i)\b(X-API-Key\s*[:=]\s*[\"']?)[^\s\"',;]+"), r"\1" + REDACTED),
    # user:password@ in URLs (smtp://, https://, ...).
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s:/@]*:)[^\s@/]+@"), r"\1" + REDACTED + "@"),
    # key=value / key: value / "key": "value" for secret-like keys.
    (
        re.compile(
            r"(?i)(\b(?:[a-z0-9]+[_-])*(?:password|passwd|pwd|secret|api[_-]?key|token|client[_-]?secret|auth[_-]?data)"
            r"[\"']?\s*[:=]\s*)(\"[^\"]*\"|'[^']*'|[^\s,;&}]+)"
        ),
        r"\1" + REDACTED,
    ),
)


#: What the base64 of an API key always contains, in any letter case: "sk_live_" / "sk_test_"
#: encoded at each of the three offsets a base64 encoder can meet it at (the characters that do
#: not depend on the bytes around it). SMTP AUTH sends keys this way (alone for LOGIN, after
#: "\0user\0" for PLAIN).
_KEY_IN_BASE64 = re.compile(
    r"(?i)c2tfbGl2ZV|NrX2xpdmVf|za19saXZlX|c2tfdGVzdF|NrX3Rlc3Rf|za190ZXN0X"
)
_BASE64_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")


def _mask_keys_in_base64(text: str) -> str:
    """Mask every run of base64 characters that holds an encoded API key."""
    found = _KEY_IN_BASE64.search(text)
    if found is None:
        return text
    out: list[str] = []
    pos = 0
    while found is not None:
        start, end = found.span()
        while start > pos and text[start - 1] in _BASE64_CHARS:
            start -= 1
        while end < len(text) and text[end] in _BASE64_CHARS:
            end += 1
        out += (text[pos:start], REDACTED)
        pos = end
        found = _KEY_IN_BASE64.search(text, end)
    out.append(text[pos:])
    return "".join(out)


def redact(text: str) -> str:
    """``text`` with every secret-looking substring masked."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return _mask_keys_in_base64(text)


def _redact_value(key: str | None, value: Any) -> Any:
    if key is not None and _SECRET_KEY_RE.match(key) and value not in (None, ""):
        return REDACTED
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, bytes):
        return redact(value.decode("utf-8", "replace"))
    if isinstance(value, Mapping):
        return {str(k): _redact_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_redact_value(None, v) for v in value]
    if isinstance(value, bool | int | float) or value is None:
        return value
    return redact(str(value))


class RedactingFilter(logging.Filter):
    """Masks secrets in a record's message, arguments, extra fields and exception text.

    Rewrites the record in place (message pre-formatted, ``args`` cleared), so every handler
    downstream sees only the redacted version. Never drops a record.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            message = f"{record.msg!r} (unformattable arguments {record.args!r})"
        record.msg = redact(str(message))
        record.args = None
        for key in [k for k in vars(record) if k not in _RECORD_ATTRS]:
            setattr(record, key, _redact_value(key, getattr(record, key)))
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
            record.exc_info = None
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {
        k: v for k, v in vars(record).items() if k not in _RECORD_ATTRS and k not in _IGNORED_EXTRAS
    }


def _timestamp(record: logging.LogRecord) -> str:
    ts = datetime.fromtimestamp(record.created, tz=UTC)
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def _exception_text(formatter: logging.Formatter, record: logging.LogRecord) -> str | None:
    text = record.exc_text
    if not text and record.exc_info:
        text = formatter.formatException(record.exc_info)
    if text and record.stack_info:
        text = text + "\n" + record.stack_info
    elif record.stack_info:
        text = record.stack_info
    return redact(text) if text else None


def _priority_prefix(levelno: int) -> str:
    # sd-daemon(3) "<N>" prefixes: journald strips them and sets the entry's priority.
    if levelno >= logging.CRITICAL:
        return "<2>"
    if levelno >= logging.ERROR:
        return "<3>"
    if levelno >= logging.WARNING:
        return "<4>"
    if levelno >= logging.INFO:
        return "<6>"
    return "<7>"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, [msg_id], msg, extra fields, [exc]."""

    def __init__(self, *, level_prefix: bool = False) -> None:
        super().__init__()
        self._level_prefix = level_prefix

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        extras = _extras(record)
        if "msg_id" in extras:
            doc["msg_id"] = extras.pop("msg_id")
        try:
            doc["msg"] = redact(record.getMessage())
        except Exception:
            doc["msg"] = redact(str(record.msg))
        for key, value in extras.items():
            if key in doc:
                key = "extra_" + key
            doc[key] = _redact_value(key, value)
        exc = _exception_text(self, record)
        if exc:
            doc["exc"] = exc
        line = _json.dumps(doc, ensure_ascii=False, default=str, separators=(",", ":"))
        return _priority_prefix(record.levelno) + line if self._level_prefix else line


class TextFormatter(logging.Formatter):
    """Human-readable lines: ``ts level logger: msg_id: msg key=value ...``."""

    def __init__(self, *, level_prefix: bool = False) -> None:
        super().__init__()
        self._level_prefix = level_prefix

    def format(self, record: logging.LogRecord) -> str:
        extras = _extras(record)
        msg_id = extras.pop("msg_id", None)
        try:
            message = record.getMessage()
        except Exception:
            message = str(record.msg)
        head = f"{_timestamp(record)} {record.levelname.lower():<7} {record.name}: "
        if msg_id:
            head += f"{msg_id}: "
        tail = "".join(
            f" {k}={_json.dumps(_redact_value(k, v), default=str, ensure_ascii=False)}"
            for k, v in extras.items()
        )
        line = redact(head + message) + tail
        exc = _exception_text(self, record)
        if exc:
            line += "\n" + exc
        return _priority_prefix(record.levelno) + line if self._level_prefix else line


def under_journald(environ: Mapping[str, str] | None = None, stream: TextIO | None = None) -> bool:
    """True when ``stream`` (default stdout) is the journal stream systemd connected us to.

    Compares ``$JOURNAL_STREAM`` ("device:inode") with the stream's file descriptor.
    """
    env = os.environ if environ is None else environ
    value = env.get("JOURNAL_STREAM", "")
    if not value:
        return False
    try:
        dev, ino = (int(part) for part in value.split(":", 1))
        st = os.fstat((stream or sys.stdout).fileno())
    except (ValueError, OSError, AttributeError):
        return False
    return st.st_dev == dev and st.st_ino == ino


def configure_logging(
    level: int | str = logging.INFO,
    *,
    json: bool,
    stream: TextIO | None = None,
    level_prefix: bool = False,
) -> logging.Handler:
    """Send every log record to ``stream`` (default stdout), one line each, secrets redacted.

    ``json`` picks the JSON line format (for journald and log shippers) over the text one.
    ``level_prefix`` adds the ``<N>`` syslog priority prefix journald understands (use
    ``under_journald()``), so ``journalctl -p warning`` works. Replaces any handler a previous
    call installed, and returns the new handler.

    Library loggers that echo protocol lines (aiosmtpd's ``mail.log`` logs SMTP commands, AUTH
    LOGIN continuation lines and DATA lines) are held at WARNING whatever ``level`` is: message
    bodies and AUTH data never reach the log. So are httpx's and httpcore's (a line per webhook
    POST, with its URL); relaygate logs each webhook attempt itself. Uvicorn must be started with ``log_config=None``
    so its records propagate here.
    """
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_relaygate", False)]:
        root.removeHandler(old)
        old.close()
    handler = logging.StreamHandler(stream if stream is not None else sys.stdout)
    handler._relaygate = True  # type: ignore[attr-defined]
    handler.addFilter(RedactingFilter())
    handler.setFormatter(
        JsonFormatter(level_prefix=level_prefix)
        if json
        else TextFormatter(level_prefix=level_prefix)
    )
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    return handler
