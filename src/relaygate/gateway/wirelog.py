"""aiosmtpd's log lines without the client's words: a filter on its ``mail.log`` logger.

aiosmtpd 1.4 logs what a client sends: every command line (INFO ``>>``, DEBUG ``readline``), an
unrecognised command upper-cased (WARNING), a command over its call limit (WARNING), an AUTH
response it cannot decode, the MAIL and RCPT addresses, and — through its own ``push`` — replies
that echo a command back. Its ``sanitize`` masks only a line that starts with upper-case
``AUTH <mechanism> <data>``. After an AUTH command refused before its exchange began (503 before
EHLO, 500 after HELO, 538 without TLS, 504 for an unknown mechanism), a client's pipelined
base64 lines arrive as commands, so any of those lines can carry an API key; so can a client
that sends the key itself where base64 was due.

``WithholdClientText`` rewrites every record of that logger before any handler sees it: the
message template (aiosmtpd's own words) and non-text arguments (the peer address, AuthResult)
stay; every text argument that is not one of aiosmtpd's command or mechanism words becomes
``[withheld]``. So no command text is logged, whether or not an AUTH exchange came before it
(Postfix, too, only counts unknown commands). The redaction in ``relaygate.logs`` is a second
net under it, not the mechanism.

Trusts: aiosmtpd's message templates (format strings, checked against 1.4.6) hold no client
text; its arguments may.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

__all__ = ["WITHHELD", "WithholdClientText", "install"]

WITHHELD = "[withheld]"

#: aiosmtpd's ``logging.getLogger`` name.
WIRE_LOGGER = "mail.log"

#: Text arguments aiosmtpd logs that are its own words, not the client's: the commands it
#: implements (as it upper-cases them), the mechanisms we offer, and the words of
#: "Using %s auth_ hook for %r".
_OWN_WORDS = frozenset(
    {
        "AUTH",
        "DATA",
        "EHLO",
        "EXPN",
        "HELO",
        "HELP",
        "MAIL",
        "NOOP",
        "QUIT",
        "RCPT",
        "RSET",
        "STARTTLS",
        "VRFY",
        "LOGIN",
        "PLAIN",
        "builtin",
        "handler",
    }
)


def _withhold(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return WITHHELD
    if isinstance(value, str):
        return value if value in _OWN_WORDS else WITHHELD
    return value


class WithholdClientText(logging.Filter):
    """Replaces client-supplied text in the arguments of aiosmtpd's records; never drops one."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple):
            record.args = tuple(_withhold(a) for a in args)
        elif isinstance(args, Mapping):
            record.args = {k: _withhold(v) for k, v in args.items()}
        return True


_FILTER = WithholdClientText()


def install() -> None:
    """Put the filter on aiosmtpd's logger (idempotent)."""
    logger = logging.getLogger(WIRE_LOGGER)
    if not any(isinstance(f, WithholdClientText) for f in logger.filters):
        logger.addFilter(_FILTER)
