"""classify(): the one classifier for SMTP replies at delivery time and for DSN recipients."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relaygate.bounces.classify import (
    HARD_REASONS,
    REASONS,
    Classification,
    classify,
    classify_expired,
    command_in_text,
    derived_status,
    normalise_command,
    reason_from_status,
)

# (reply code, enhanced status, text) as real MTAs and providers send them → (type, reason)
REPLIES = [
    # Gmail
    (
        550,
        "5.1.1",
        "5.1.1 The email account that you tried to reach does not exist. Please try "
        "double-checking the recipient's email address for typos or unnecessary spaces.",
        "hard",
        "userunknown",
    ),
    (
        550,
        "5.7.1",
        "5.7.1 Our system has detected an unusual rate of unsolicited mail originating from "
        "your IP address. To protect our users from spam, mail sent from your IP address has "
        "been blocked.",
        "soft",
        "blocked",
    ),
    (
        421,
        "4.7.0",
        "4.7.0 [192.0.2.1] Our system has detected that this message is suspicious due to the "
        "very low reputation of the sending IP address.",
        "soft",
        "badreputation",
    ),
    (
        552,
        "5.2.2",
        "5.2.2 The email account that you tried to reach is over quota.",
        "soft",
        "mailboxfull",
    ),
    (
        550,
        "5.7.26",
        "5.7.26 This mail is unauthenticated, which poses a security risk to the sender and "
        "Gmail users, and has been blocked. The sender must authenticate with at least one "
        "of SPF or DKIM.",
        "soft",
        "authfailure",
    ),
    # Outlook / Hotmail / Office 365
    (
        550,
        "5.5.0",
        "5.5.0 Requested action not taken: mailbox unavailable (S2017062302). [BN7NAM10FT]",
        "hard",
        "userunknown",
    ),
    (
        550,
        "5.1.10",
        "5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup",
        "hard",
        "userunknown",
    ),
    (
        550,
        "5.7.1",
        "5.7.1 Unfortunately, messages from [192.0.2.1] weren't sent. Please contact your "
        "Internet service provider since part of their network is on our block list (S3150).",
        "soft",
        "blocked",
    ),
    # Yahoo / AOL
    (
        554,
        None,
        "delivery error: dd This user doesn't have a yahoo.com account (x@yahoo.com) [0]",
        "hard",
        "userunknown",
    ),
    (
        421,
        "4.7.0",
        "[TSS04] Messages from 192.0.2.1 temporarily deferred due to unexpected volume or "
        "user complaints",
        "soft",
        "badreputation",
    ),
    # Postfix, Exim, Sendmail, qmail
    (
        550,
        "5.1.1",
        "<nobody@example.org>: Recipient address rejected: User unknown in virtual mailbox table",
        "hard",
        "userunknown",
    ),
    (554, "5.7.1", "<x@example.org>: Relay access denied", "soft", "norelaying"),
    (
        554,
        "5.7.1",
        "Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org",
        "soft",
        "blocked",
    ),
    (550, None, "Unrouteable address", "hard", "hostunknown"),
    (553, None, "sorry, no mailbox here by that name. (#5.1.1)", "hard", "userunknown"),
    (552, "5.3.4", "5.3.4 Message size exceeds fixed limit", "soft", "mesgtoobig"),
    (
        550,
        None,
        "Host or domain name not found. Name service error for name=x",
        "hard",
        "hostunknown",
    ),
    (550, "5.7.1", "Message rejected as spam by Content Filtering.", "soft", "spamdetected"),
    (554, "5.7.1", "This message contains a virus (Eicar-Test-Signature)", "soft", "virusdetected"),
    (550, "5.1.6", "5.1.6 Recipient addresses in this domain no longer in use", "hard", "hasmoved"),
    (556, "5.1.10", "5.1.10 Recipient address has null MX", "hard", "notaccept"),
    (
        550,
        "5.7.25",
        "5.7.25 The ip address sending this message does not have a PTR record",
        "soft",
        "requireptr",
    ),
    (450, "4.2.2", "4.2.2 Mailbox full", "soft", "mailboxfull"),
    (
        421,
        None,
        "Too many concurrent SMTP connections; please try again later.",
        "soft",
        "toomanyconn",
    ),
    (
        550,
        "5.2.1",
        "5.2.1 The email account that you tried to reach is disabled.",
        "soft",
        "suspend",
    ),
]


@pytest.mark.parametrize(("code", "status", "text", "kind", "reason"), REPLIES)
def test_real_replies_classify(
    code: int, status: str | None, text: str, kind: str, reason: str
) -> None:
    assert classify(smtp_code=code, status=status, diagnostic=text) == Classification(
        bounce_type=kind,
        reason=reason,  # type: ignore[arg-type]
    )


def test_temporary_user_unknown_is_soft() -> None:
    got = classify(smtp_code=450, status="4.1.1", diagnostic="4.1.1 <x@y>: User unknown")
    assert got.reason == "userunknown"
    assert got.bounce_type == "soft"


def test_status_only_and_code_only() -> None:
    assert classify(smtp_code=550, status="5.1.1", diagnostic="").bounce_type == "hard"
    assert classify(smtp_code=None, status="5.1.2", diagnostic="").reason == "hostunknown"
    assert classify(smtp_code=None, status=None, diagnostic="") == Classification(
        bounce_type="soft", reason="undefined"
    )
    assert classify(smtp_code=552, status=None, diagnostic="").reason == "mailboxfull"


def test_policy_block_with_user_unknown_words_is_not_hard() -> None:
    got = classify(
        smtp_code=550,
        status="5.7.1",
        diagnostic="5.7.1 <x@sfr.fr>: Recipient address rejected: User unknown",
    )
    assert got.bounce_type == "soft"


def test_rejection_at_mail_from_blames_the_sender() -> None:
    got = classify(
        smtp_code=553,
        status="5.1.8",
        diagnostic="553 5.1.8 <a@b>... Domain of sender address a@b does not exist",
    )
    assert got == Classification(bounce_type="soft", reason="rejected")


def test_address_text_is_not_read_as_wording() -> None:
    got = classify(smtp_code=550, status=None, diagnostic="550 rejected for spam@example.org")
    assert got.reason != "spamdetected"


def test_gave_up_after_timeouts_is_expired() -> None:
    got = classify(
        smtp_code=None,
        status="4.4.1",
        diagnostic="connect to mx.example.org[192.0.2.1]:25: Connection timed out",
        gave_up=True,
    )
    assert got == Classification(bounce_type="soft", reason="expired")


def test_classify_expired() -> None:
    assert classify_expired() == Classification(bounce_type="soft", reason="expired")


def test_derived_status_uses_x_0_9yy() -> None:
    assert derived_status("userunknown", temporary=False) == "5.0.911"
    assert derived_status("expired", temporary=True) == "4.0.947"
    assert derived_status("nonsense", temporary=False) == ""
    assert reason_from_status("5.0.911") == "userunknown"
    assert reason_from_status("2.0.0") is None
    assert reason_from_status("banana") is None


@settings(max_examples=300, deadline=None)
@given(
    code=st.one_of(st.none(), st.integers(min_value=-1000, max_value=1000)),
    status=st.one_of(st.none(), st.text(max_size=12), st.from_regex(r"[245]\.\d{1,3}\.\d{1,3}")),
    text=st.text(max_size=400),
    command=st.one_of(
        st.none(), st.sampled_from(["RCPT", "DATA", "MAIL", "EHLO"]), st.text(max_size=12)
    ),
)
def test_never_raises_and_hard_only_for_address_reasons(
    code: int | None, status: str | None, text: str, command: str | None
) -> None:
    got = classify(smtp_code=code, status=status, diagnostic=text, command=command)
    assert got.reason in REASONS
    if got.bounce_type == "hard":
        assert got.reason in HARD_REASONS


# --- the SMTP command decides what a refusal is about -----------------------------------------


def test_same_words_at_rcpt_and_after_data() -> None:
    # Refused at RCPT TO: the address does not exist. After the recipient was accepted and the
    # content sent, the same words are a filter speaking about this message.
    at_rcpt = classify(smtp_code=550, status=None, diagnostic="550 Unknown user", command="RCPT")
    at_data = classify(smtp_code=550, status=None, diagnostic="550 Unknown user", command="DATA")
    assert at_rcpt == Classification(bounce_type="hard", reason="userunknown")
    assert at_data == Classification(bounce_type="soft", reason="filtered")


def test_refused_at_mail_from_is_about_the_sender() -> None:
    got = classify(
        smtp_code=553,
        status="5.1.1",
        diagnostic="553 5.1.1 <a@sender.example>: User unknown",
        command="MAIL",
    )
    assert got == Classification(bounce_type="soft", reason="rejected")
    denied = classify(
        smtp_code=550, status="5.7.1", diagnostic="550 5.7.1 Access denied", command="MAIL"
    )
    assert denied.reason == "rejected"


def test_refused_at_greeting_without_words_is_blocked() -> None:
    got = classify(smtp_code=554, status=None, diagnostic="554 mx.example.org", command="CONN")
    assert got == Classification(bounce_type="soft", reason="blocked")


def test_spam_words_before_the_content_was_sent_are_not_spamdetected() -> None:
    # At RCPT the receiver has not seen the content: its spam wording is about the sending host.
    got = classify(
        smtp_code=550,
        status="5.7.1",
        diagnostic="550 5.7.1 Client host blocked: too much spam from your IP",
        command="RCPT",
    )
    assert got.reason == "blocked"
    after = classify(
        smtp_code=550,
        status="5.7.1",
        diagnostic="550 5.7.1 Message rejected as spam by Content Filtering",
        command="DATA",
    )
    assert after.reason == "spamdetected"


@pytest.mark.parametrize(
    ("text", "command"),
    [
        (
            "host mx.example.org[192.0.2.1] said: 550 Unknown user (in reply to end of DATA command)",
            "DATA",
        ),
        (
            "host mx.example.org[192.0.2.1] said: 550 Unknown user (in reply to RCPT TO command)",
            "RCPT",
        ),
        (
            "SMTP error from remote mail server after RCPT TO:<a@example.org>: 550 Unknown user",
            "RCPT",
        ),
        ("SMTP error from remote mail server after end of data: 550 Unknown user", "DATA"),
        (
            "SMTP error from remote mail server after MAIL FROM:<s@example.com> SIZE=10: 550 no",
            "MAIL",
        ),
        ("... while talking to mx.example.org.: >>> DATA <<< 550 Unknown user", "DATA"),
        (">>> RCPT To:<a@example.org> <<< 550 5.1.1 Unknown user", "RCPT"),
        ("Connected to 192.0.2.1 but sender was rejected. Remote host said: 550 no", "MAIL"),
        ("192.0.2.1 does not like recipient. Remote host said: 550 no", "RCPT"),
        ("SMTP error from remote server for TEXT command, reason: 550 rejected", "DATA"),
        ("550 Unknown user", ""),
    ],
)
def test_command_read_from_the_text(text: str, command: str) -> None:
    assert command_in_text(text) == command


def test_command_named_in_the_text_is_used() -> None:
    got = classify(
        smtp_code=550,
        status="5.0.0",
        diagnostic="550 Unknown user a@example.org (in reply to end of DATA command)",
    )
    assert got == Classification(bounce_type="soft", reason="filtered")


def test_a_caller_given_command_wins_over_the_text() -> None:
    got = classify(
        smtp_code=550,
        status=None,
        diagnostic="550 Unknown user (in reply to end of DATA command)",
        command="RCPT",
    )
    assert got.reason == "userunknown"


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        ("RCPT TO", "RCPT"),
        ("rcpt", "RCPT"),
        ("end of data", "DATA"),
        ("Mail From", "MAIL"),
        ("ehlo", "EHLO"),
        ("NOOP", ""),
        ("", ""),
    ],
)
def test_normalise_command(raw: str, name: str) -> None:
    assert normalise_command(raw) == name


# --- reasons from text, code and command together ---------------------------------------------


def test_delivery_time_exceeded_is_expired_whatever_the_last_error() -> None:
    got = classify(
        smtp_code=550,
        status="5.1.1",
        diagnostic="retry timeout exceeded; last error: 550 5.1.1 User unknown",
    )
    assert got == Classification(bounce_type="soft", reason="expired")


def test_a_status_code_alone_decides_where_it_is_specific() -> None:
    assert classify(smtp_code=550, status="5.7.25", diagnostic="550 go away").reason == (
        "requireptr"
    )
    assert classify(smtp_code=552, status="5.2.2", diagnostic="552 sorry").reason == "mailboxfull"


def test_domain_not_found_said_temporarily_is_a_network_error() -> None:
    got = classify(
        smtp_code=None,
        status="4.0.0",
        diagnostic="DNS Error: lookup of example.jp responded with NXDOMAIN Domain name not found",
    )
    assert got == Classification(bounce_type="soft", reason="networkerror")


def test_local_program_failure_is_mailererror() -> None:
    got = classify(smtp_code=None, status="5.3.0", diagnostic="X-Unix; procmail: No such user")
    assert got == Classification(bounce_type="soft", reason="mailererror")


def test_unreadable_text_is_onhold_and_nothing_is_undefined() -> None:
    assert classify(smtp_code=550, status=None, diagnostic="550 ???").reason == "onhold"
    assert classify(smtp_code=None, status=None, diagnostic="").reason == "undefined"


def test_metrics_label_the_classifier_vocabulary() -> None:
    from relaygate.metrics import BOUNCE_REASONS

    assert REASONS | {"suppressed", "other"} == BOUNCE_REASONS
