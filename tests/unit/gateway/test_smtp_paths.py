"""MAIL/RCPT argument parsing: the regular-expression fast path answers exactly as the parser."""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any

import aiosmtpd.smtp
import pytest
from aiosmtpd.smtp import SMTP
from hypothesis import given, settings
from hypothesis import strategies as st

import relaygate.gateway.smtp as gateway_smtp
from relaygate.gateway import wirelog
from relaygate.gateway.smtp import install_quiet_log, parse_path

PEER = ("192.0.2.1", 40000)


def reference(arg: str) -> tuple[str | None, str | None]:
    """aiosmtpd's own ``SMTP._getaddr`` (no local-part limit)."""
    result: tuple[str | None, str | None] = SMTP._getaddr(SimpleNamespace(local_part_limit=0), arg)
    return result


def same(arg: str) -> None:
    """Same answer, or the same exception (the parser raises IndexError on ``<@``, for one)."""
    try:
        expected: object = reference(arg)
    except Exception as exc:
        expected = type(exc)
    try:
        got: object = parse_path(arg)
    except Exception as exc:
        got = type(exc)
    assert got == expected, arg


ALPHABET = "ab.Z9@<> \t()\"=?[]\\,:;+-_é{}'!%/`~#$&*^|\x00"
atom = st.text("ab.Z9+-_=?'{}#", min_size=0, max_size=6)


@settings(max_examples=3000, deadline=None)
@given(st.text(ALPHABET, max_size=30))
def test_any_argument_parses_as_aiosmtpd_does(arg: str) -> None:
    same(arg)


@settings(max_examples=3000, deadline=None)
@given(
    st.sampled_from(["", " ", "\t", "(", "<"]),
    atom,
    st.sampled_from(["@", "@@", ".@", "@.", ""]),
    atom,
    st.sampled_from([">", "", ">>", " >"]),
    st.sampled_from(["", " SIZE=10", "  BODY=8BITMIME ", "(c) X", "\tX", "x", " (c)"]),
)
def test_near_plain_paths_parse_as_aiosmtpd_does(
    lead: str, local: str, at: str, domain: str, close: str, rest: str
) -> None:
    same(f"{lead}<{local}{at}{domain}{close}{rest}")


def test_examples() -> None:
    assert parse_path("<app@example.com>") == ("app@example.com", "")
    assert parse_path("<a.b+c@Ex-ample.COM>  SIZE=10 ") == ("a.b+c@Ex-ample.COM", "SIZE=10 ")
    assert parse_path("<>") == reference("<>")
    assert parse_path("<app@example.com.>") == (None, None)
    assert parse_path("<=?utf-8?q?a?=@x.test>") == reference("<=?utf-8?q?a?=@x.test>")
    assert parse_path('<"a b"@x.test>') == ('"a b"@x.test', "")
    assert parse_path("<app@example.com> (comment) SIZE=1") == ("app@example.com", "SIZE=1")


def test_aiosmtpd_command_logging_still_logs_when_enabled(
    caplog: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The installed ``sanitized_log`` skips aiosmtpd's sanitising only where the logger would
    drop the line anyway; enabled lines are logged as before (through the ``wirelog`` filter,
    which withholds the client's text)."""
    install_quiet_log()
    wirelog.install()
    assert aiosmtpd.smtp.sanitized_log is gateway_smtp._sanitized_log
    sanitised: list[Any] = []
    original = gateway_smtp._aiosmtpd_sanitized_log

    def spy(func: Any, msg: Any, *args: Any, **kwargs: Any) -> None:
        sanitised.append(args)
        original(func, msg, *args, **kwargs)

    monkeypatch.setattr(gateway_smtp, "_aiosmtpd_sanitized_log", spy)
    logger = logging.getLogger("mail.log")
    with caplog.at_level(logging.INFO, logger="mail.log"):
        aiosmtpd.smtp.sanitized_log(logger.info, "%r >> %r", PEER, b"MAIL FROM:<\x00a@b>")
        aiosmtpd.smtp.sanitized_log(logger.debug, "%r", b"not at INFO")
    assert sanitised == [(PEER, b"MAIL FROM:<\x00a@b>")]  # the DEBUG line was never sanitised
    assert [r.getMessage() for r in caplog.records] == [f"{PEER!r} >> '[withheld]'"]
