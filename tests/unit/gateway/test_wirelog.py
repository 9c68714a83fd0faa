"""aiosmtpd's records keep their template and peer; the client's text is withheld."""

from __future__ import annotations

import logging

from relaygate.gateway.wirelog import WITHHELD, WithholdClientText

PEER = ("192.0.2.1", 40000)


def rewritten(msg: str, args: object) -> str:
    record = logging.LogRecord("mail.log", logging.WARNING, "x", 1, msg, args, None)  # type: ignore[arg-type]
    assert WithholdClientText().filter(record) is True  # never drops a record
    return record.getMessage()


def test_client_text_is_withheld_and_aiosmtpd_words_are_kept() -> None:
    assert (
        rewritten("%r unrecognised: %s", (PEER, "C2TFBGL2ZV9"))
        == f"{PEER!r} unrecognised: {WITHHELD}"
    )
    assert rewritten("%r >> %r", (PEER, b"AUTH PLAIN AGFwaWtleQ")) == f"{PEER!r} >> '{WITHHELD}'"
    assert rewritten("%r over limit for %s", (PEER, "MAIL")) == f"{PEER!r} over limit for MAIL"
    assert rewritten("Using %s auth_ hook for %r", ("builtin", "LOGIN")) == (
        "Using builtin auth_ hook for 'LOGIN'"
    )
    assert rewritten("%r sender: %s", (PEER, "a@b.test")) == f"{PEER!r} sender: {WITHHELD}"
    assert rewritten("%(line)s", ({"line": "c2tfbGl2ZV9"},)) == WITHHELD
    assert rewritten("%r connection lost", (PEER,)) == f"{PEER!r} connection lost"
    assert rewritten("no arguments", None) == "no arguments"
