"""Bounce classification: one function for SMTP replies at delivery time and for DSN recipients.

Owns the decision of what a failure means: a reason in Sisimai's vocabulary and `hard` or `soft`,
from three things read together — the SMTP command that drew the refusal, the enhanced status
code, and the wording (`relaygate.bounces.wording`). The rules follow Sisimai's documented
definitions of each reason, not any particular message:

1. A notice that the reporting system gave up because time ran out (its queue lifetime) is
   `expired`, whatever the last error on the way was.
2. The command decides what a refusal is about. A recipient refused in reply to RCPT TO with
   words saying the address does not exist is `userunknown`; the same words in reply to DATA or
   to the end of the data (the recipient was already accepted) are a content or per-recipient
   filter speaking: `filtered`. Refused at MAIL FROM, it is the sender that was not wanted:
   `rejected`. Refused at the greeting or EHLO, the connecting host was: `blocked`. Spam
   wording is `spamdetected` only once the content was sent (DATA), unless the code says so.
3. Otherwise the reasons are tried in a fixed order, each on its code and its words (mailbox
   full, too big, suspended, moved, relaying denied, authentication, address unknown, filtered,
   PTR, RFC compliance, reputation, content, sender, host unknown, spam, rate, connections,
   blocked). A code alone decides only where it is specific (5.1.1, 5.2.2, 5.7.25...).
4. Still undecided: wording of the remaining reasons; then the code's meaning; 5.6.x content,
   5.7.x security; 50x syntax; a reporter that gave up on a temporary error: `expired`;
   refused at connection or EHLO: `blocked`.
5. Nothing recognisable: `onhold` when there was text to read, `undefined` when there was none.

When the caller does not know the command, it is read from the text where MTAs print it
(Postfix "(in reply to RCPT TO command)", Exim "after RCPT TO:", Sendmail ">>> DATA" transcripts,
qmail "but sender was rejected"); unknown, user-unknown wording counts as `userunknown` only if
the code does not name another reason.

`hard` only for a reason that says the address can never work (userunknown, hostunknown,
hasmoved, notaccept) reported as a permanent failure; policy, reputation and spam blocks are soft,
and so is anything undecided: suppressing on a guess is the costly mistake.

Trusts nothing in its input: any strings, any lengths (the text is truncated before matching).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

from relaygate.bounces.statuscodes import (
    derived_status,
    is_temporary,
    parse_status,
    reason_from_status,
)
from relaygate.bounces.wording import normalise_text, says

__all__ = [
    "HARD_REASONS",
    "REASONS",
    "BounceType",
    "Classification",
    "bounce_type_for",
    "classify",
    "classify_expired",
    "command_in_text",
    "derived_status",
    "is_temporary",
    "normalise_command",
    "reason_from_status",
    "reason_from_text",
]

BounceType = Literal["hard", "soft"]

#: Sisimai's reason vocabulary (plus ``feedback``, ``vacation`` and ``delivered`` used elsewhere).
REASONS: Final = frozenset(
    {
        "userunknown",
        "hostunknown",
        "hasmoved",
        "notaccept",
        "mailboxfull",
        "mesgtoobig",
        "exceedlimit",
        "filtered",
        "blocked",
        "rejected",
        "policyviolation",
        "spamdetected",
        "virusdetected",
        "contenterror",
        "securityerror",
        "authfailure",
        "badreputation",
        "requireptr",
        "norelaying",
        "notcompliantrfc",
        "syntaxerror",
        "systemerror",
        "systemfull",
        "mailererror",
        "networkerror",
        "toomanyconn",
        "speeding",
        "suspend",
        "expired",
        "onhold",
        "failedstarttls",
        "undefined",
    }
)

#: The only reasons that make a bounce hard: the address itself will never work.
HARD_REASONS: Final = frozenset({"userunknown", "hostunknown", "hasmoved", "notaccept"})

#: SMTP commands as this module names them; "" is "not known".
COMMANDS: Final = ("CONN", "EHLO", "HELO", "STARTTLS", "AUTH", "MAIL", "RCPT", "DATA")
_BEFORE_DATA: Final = frozenset({"CONN", "EHLO", "HELO", "STARTTLS", "AUTH", "MAIL", "RCPT"})
_GREETING: Final = frozenset({"CONN", "EHLO", "HELO"})


@dataclass(frozen=True, kw_only=True)
class Classification:
    """What a failure means for the recipient address."""

    bounce_type: BounceType
    reason: str


# --- the SMTP command ------------------------------------------------------------------------------

_COMMAND_WORDS: Final[dict[str, str]] = {
    "rcpt to": "RCPT",
    "rcpt": "RCPT",
    "mail from": "MAIL",
    "mail": "MAIL",
    "end of data": "DATA",
    "data": "DATA",
    "text": "DATA",
    "dot": "DATA",
    "ehlo": "EHLO",
    "helo": "HELO",
    "lhlo": "EHLO",
    "initial connection": "CONN",
    "greeting": "CONN",
    "initial greeting": "CONN",
    "starttls": "STARTTLS",
    "auth": "AUTH",
}
_CMD = r"(rcpt to|mail from|end of data|data|ehlo|helo|lhlo|starttls|auth|initial connection|initial greeting|greeting)"
_COMMAND_RES: Final = (
    # Postfix: "(in reply to RCPT TO command)"; others: "in reply to the greeting".
    re.compile(r"in reply to (?:the )?(?:initial )?" + _CMD + r"\b"),
    # Exim: "SMTP error from remote mail server after RCPT TO:<...>"; 1&1: "for RCPT TO command".
    re.compile(r"\bafter (?:the )?" + _CMD + r"\b"),
    re.compile(
        r"\b(?:for|after) (rcpt to|rcpt|mail from|mail|data|text|ehlo|helo|starttls|auth) command\b"
    ),
    # "SMTP:RCPT host 192.0.2.1: 550 ..."
    re.compile(r"\bsmtp ?: ?(rcpt|mail|data|ehlo|helo)\b"),
    re.compile(r"\bwhile (?:sending|performing) (?:the )?(rcpt to|mail from|data|ehlo|helo)\b"),
)
# A transcript: the last command sent before the failing reply (Sendmail, Courier, ...).
_TRANSCRIPT_RE = re.compile(
    r">>> ?(rcpt to|mail from|data|ehlo|helo|lhlo|starttls|auth)\b(?:(?!>>>).){0,400}?<<< ?[45]\d\d"
)
# qmail-remote's own sentences.
_QMAIL_RES: Final = (
    (re.compile(r"\bbut sender was rejected\b"), "MAIL"),
    (re.compile(r"\bbut my name was rejected\b"), "EHLO"),
    (re.compile(r"\bbut greeting failed\b"), "CONN"),
    (re.compile(r"\bfailed on data command\b"), "DATA"),
    (re.compile(r"\bfailed after i sent the message\b"), "DATA"),
    (re.compile(r"\bdoes not like recipient\b"), "RCPT"),
    (re.compile(r"\bdoes not like sender\b"), "MAIL"),
    # The DragonFly Mail Agent: "... did not like our RCPT TO:"
    (re.compile(r"\bdid not like our rcpt to\b"), "RCPT"),
    (re.compile(r"\bdid not like our mail from\b"), "MAIL"),
    (re.compile(r"\bdid not like our data\b"), "DATA"),
)


def normalise_command(command: str | None) -> str:
    """A command as the caller names it ("RCPT TO", "rcpt", "DATA") in this module's names."""
    if not command:
        return ""
    word = " ".join(command.lower().split())
    if word in _COMMAND_WORDS:
        return _COMMAND_WORDS[word]
    head = word.split(" ", 1)[0]
    upper = head.upper()
    return upper if upper in COMMANDS else _COMMAND_WORDS.get(head, "")


def command_in_text(text: str) -> str:
    """The SMTP command a diagnostic text says the refusal answered, or "" when it does not say.

    `text` may be raw or normalised. Where the text names several, the last one counts (the
    transcript's last command before the failure).
    """
    low = normalise_text(text) if text else ""
    if not low:
        return ""
    found = ""
    where = -1
    for pattern in (*_COMMAND_RES, _TRANSCRIPT_RE):
        for m in pattern.finditer(low):
            if m.start() > where:
                found, where = _COMMAND_WORDS.get(m.group(1), ""), m.start()
    if found:
        return found
    for pattern, command in _QMAIL_RES:
        if pattern.search(low):
            return command
    return ""


# --- the decision ----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class _Facts:
    text: str
    named: str  # the reason the status code names, "" when none
    command: str  # "" when not known
    code: int | None
    subject: int | None  # the status code's subject (7 in 5.7.1)


# Reasons the status code alone must not settle: their words decide first.
_WEAK_NAMES: Final = frozenset(
    {
        "",
        "undefined",
        "onhold",
        "systemerror",
        "securityerror",
        "expired",
        "networkerror",
        "hostunknown",
        "userunknown",
    }
)
_NOT_USERUNKNOWN: Final = ("norelaying", "mailboxfull", "hasmoved", "rejected", "notaccept")


def _userunknown(f: _Facts) -> bool:
    if f.named == "userunknown":
        return not any(says(r, f.text) for r in _NOT_USERUNKNOWN)
    if not says("userunknown", f.text) or says("hostunknown", f.text):
        return False
    # About the address only when refused in reply to RCPT TO. With no command known, unless
    # the code says the mailbox exists (x.2.x), names a policy (x.7.x) or blames the sender.
    return f.command == "RCPT" or (
        f.command == "" and f.subject not in (2, 7) and f.named != "rejected"
    )


def _filtered(f: _Facts) -> bool:
    if f.named == "filtered":
        return says("userunknown", f.text) or says("filtered", f.text)
    if f.command in _BEFORE_DATA or (f.command == "" and f.named not in _WEAK_NAMES):
        return False
    return says("filtered", f.text) or says("userunknown", f.text)


def _rejected(f: _Facts) -> bool:
    if f.named == "rejected":
        return True
    if f.command == "MAIL":
        # "Access denied" in reply to MAIL FROM: it is the sender that was denied.
        return says("rejected", f.text) or "access denied" in f.text
    if f.command == "DATA":
        return f.named != "userunknown" and says("rejected", f.text)
    return f.named in {"", "undefined", "onhold", "securityerror", "systemerror"} and says(
        "rejected", f.text
    )


def _spamdetected(f: _Facts) -> bool:
    if f.named == "spamdetected":
        return True
    if f.command in _BEFORE_DATA:
        return False
    # Spam sent from the connecting host's address is a block on the host, not on this content.
    return says("spamdetected", f.text) and not says("blocked", f.text)


def _hostunknown(f: _Facts) -> bool:
    if says("hostunknown", f.text):
        return True
    # 5.1.2 / 5.4.4, unless the words say the lookup failed rather than found nothing.
    return f.named == "hostunknown" and not says("networkerror", f.text)


def _named_or_says(reason: str) -> Callable[[_Facts], bool]:
    return lambda f: f.named == reason or says(reason, f.text)


def _says(reason: str) -> Callable[[_Facts], bool]:
    return lambda f: says(reason, f.text)


_FIRST: Final[tuple[tuple[str, Callable[[_Facts], bool]], ...]] = (
    ("mailboxfull", _named_or_says("mailboxfull")),
    (
        "mesgtoobig",
        lambda f: (
            f.named == "mesgtoobig" or (f.named != "exceedlimit" and says("mesgtoobig", f.text))
        ),
    ),
    ("exceedlimit", _named_or_says("exceedlimit")),
    ("suspend", lambda f: f.code == 525 or says("suspend", f.text)),
    ("hasmoved", _named_or_says("hasmoved")),
    ("norelaying", lambda f: f.command not in _GREETING and says("norelaying", f.text)),
    ("authfailure", _named_or_says("authfailure")),
    ("userunknown", _userunknown),
    ("filtered", _filtered),
    ("requireptr", _named_or_says("requireptr")),
    ("notcompliantrfc", _says("notcompliantrfc")),
    ("badreputation", _says("badreputation")),
    (
        "contenterror",
        lambda f: (
            not _spamdetected(f) and (f.named == "contenterror" or says("contenterror", f.text))
        ),
    ),
    ("rejected", _rejected),
    ("hostunknown", _hostunknown),
    ("spamdetected", _spamdetected),
    ("speeding", _says("speeding")),
    ("toomanyconn", _named_or_says("toomanyconn")),
    ("blocked", _named_or_says("blocked")),
)

# Wording tried when the first pass found nothing and the code names nothing firm.
_SECOND: Final = (
    "mailboxfull",
    "authfailure",
    "badreputation",
    "speeding",
    "spamdetected",
    "virusdetected",
    "policyviolation",
    "norelaying",
    "notaccept",
    "systemerror",
    "networkerror",
    "suspend",
    "contenterror",
    "systemfull",
    "expired",
    "failedstarttls",
    "securityerror",
    "mailererror",
)

_ADDRESS_LEVEL: Final = frozenset(
    {"userunknown", "hostunknown", "hasmoved", "notaccept", "filtered", "suspend"}
)

# RFC 5321's own meanings of reply codes, used only when nothing else says anything.
_REPLY_CODE_REASON: Final[dict[int, str]] = {
    421: "systemerror",
    451: "systemerror",
    452: "systemfull",
    552: "mailboxfull",
}


def _decide(f: _Facts, *, gave_up: bool, temporary: bool) -> str:
    if says("expired_notice", f.text):
        return "expired"
    if f.text.startswith("x-unix;"):
        # A local delivery program's exit, not an SMTP reply.
        return "mailboxfull" if says("mailboxfull", f.text) else "mailererror"
    reason = next((name for name, probe in _FIRST if probe(f)), "")
    if not reason:
        reason = _second(f, gave_up=gave_up)
    if f.command == "MAIL" and reason in _ADDRESS_LEVEL:
        # Refused at MAIL FROM, before any recipient was named: the address it means is the
        # sender's.
        return "rejected"
    if reason == "hostunknown" and temporary:
        # "No such domain" said with a temporary code is a lookup that failed, not a verdict.
        return "networkerror"
    if not reason and f.code is not None:
        reason = _REPLY_CODE_REASON.get(f.code, "")
    if not reason:
        return "onhold" if f.text else "undefined"
    return reason


def _second(f: _Facts, *, gave_up: bool) -> str:
    if f.named not in _WEAK_NAMES:
        return f.named
    for name in _SECOND:
        if says(name, f.text):
            return "expired" if name == "networkerror" and gave_up and _timed_out(f) else name
    if f.named:
        return f.named
    if f.subject == 6:
        return "contenterror"
    if f.subject == 7:
        return "securityerror"
    if f.code is not None and (401 <= f.code <= 407 or 501 <= f.code <= 507):
        return "syntaxerror"
    if gave_up:
        return "expired"
    if f.command in _GREETING:
        return "blocked"
    return ""


def _timed_out(f: _Facts) -> bool:
    return says("expired", f.text) or "timed out" in f.text or "timeout" in f.text


def classify(
    *,
    smtp_code: int | None,
    status: str | None,
    diagnostic: str,
    command: str | None = None,
    gave_up: bool = False,
) -> Classification:
    """Classify one failure (an SMTP reply at delivery time, or one DSN recipient).

    `smtp_code` is the basic reply code (550), `status` the enhanced code ("5.1.1"), `diagnostic`
    the reply or Diagnostic-Code text, `command` the SMTP command the reply answered ("RCPT",
    "DATA", "MAIL", "EHLO", "CONN"; None: read it from the text). `gave_up` says the reporter
    stopped trying although the last error was temporary (a DSN with Action: failed and a
    4.x.x status). Never raises.
    """
    text = normalise_text(diagnostic) if diagnostic else ""
    cmd = normalise_command(command) if command else command_in_text(text)
    code = parse_status(status)
    facts = _Facts(
        text=text,
        named=(reason_from_status(status) or "") if code is not None else "",
        command=cmd,
        code=smtp_code,
        subject=code.subject if code is not None else None,
    )
    temporary = is_temporary(smtp_code=smtp_code, status=status)
    reason = _decide(facts, gave_up=gave_up, temporary=temporary)
    return Classification(bounce_type=bounce_type_for(reason, temporary=temporary), reason=reason)


# The order wording alone is read in when there is nothing else (Sisimai's plain text match).
_TEXT_ORDER: Final = (
    "expired_notice",
    "mailboxfull",
    "mesgtoobig",
    "exceedlimit",
    "suspend",
    "userunknown",
    "filtered",
    "rejected",
    "hostunknown",
    "spamdetected",
    "speeding",
    "toomanyconn",
    "blocked",
    "authfailure",
    "failedstarttls",
    "securityerror",
    "systemerror",
    "networkerror",
    "expired",
    "contenterror",
    "hasmoved",
    "systemfull",
    "notaccept",
    "mailererror",
    "norelaying",
    "syntaxerror",
    "virusdetected",
    "policyviolation",
    "requireptr",
    "notcompliantrfc",
    "badreputation",
)


def reason_from_text(diagnostic: str) -> str | None:
    """The reason the wording alone names (no code, no command), or None when nothing is."""
    text = normalise_text(diagnostic)
    for name in _TEXT_ORDER:
        if says(name, text):
            return "expired" if name == "expired_notice" else name
    return None


def bounce_type_for(reason: str, *, temporary: bool) -> BounceType:
    """`hard` only for an address-level permanent failure."""
    return "hard" if reason in HARD_REASONS and not temporary else "soft"


def classify_expired() -> Classification:
    """The classification for a recipient given up after the queue lifetime: a soft `expired`."""
    return Classification(bounce_type="soft", reason="expired")
