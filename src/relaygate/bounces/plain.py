"""Human-readable bounces: find the failed recipients and their error text in prose.

Owns the heuristics for the many MTAs that do not send (or not only send) RFC 3464 reports:
qmail ("<addr>:" blocks), Exim ("addr:" blocks, X-Failed-Recipients), Postfix without DSN,
Sendmail transcripts, old Exchange/Lotus/GroupWise summaries, and big providers' prose. The
approach is generic, not per file: cut the text where the returned message starts, find
addresses in the positions MTAs put failed recipients in, and take the lines that follow each
as its diagnostic. Trusts nothing; bounded work on any input.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass

from relaygate.bounces.mimeparts import addresses

_MAX_TEXT = 60_000
_BLOCK_LINES = 12

# Lines after which the returned original message (or its headers) follows.
_CUT_RE = re.compile(
    r"(?im)^[ \t>|]*(?:[-=_*]{2,}[ \t]*)?(?:"
    r"original message|below this line is a copy|this is a copy of|"
    r"(?:the )?(?:original|returned|unsent|undelivered) message (?:follows|below|headers?)|"
    r"returned message|returned mail|unsent message|message text follows|"
    r"(?:the )?headers? of (?:the|your) (?:original )?message|copy of (?:the|your) message|"
    r"original message headers|message headers follow|forwarded message|"
    r"content-type: message/rfc822|text of the original message|"
    r"a copy of the original message below|your message reads|the original message was:|"
    r"undelivered message (?:attached|headers)|original text follows|"
    r"[-=]+ ?(?:message|header) (?:header|body)"
    r")"
)
_HEADER_START_RE = re.compile(
    r"(?im)^(?:return-path|received|dkim-signature|arc-seal|x-received|delivered-to|"
    r"authentication-results|x-original-to):[ \t]*\S.*\n(?:[ \t].*\n)*[A-Za-z][A-Za-z0-9-]*:"
)

# Lines that carry someone other than the failed recipient.
_SKIP_LINE_RE = re.compile(
    r"(?i)^\s*(?:>>>\s*)?(?:mail from|from|sender|reply-to|return-path|message-id|"
    r"x-postfix-sender|x-original-sender|in-reply-to|references|received|envelope-from|"
    r"sent by|original sender|the sender|your address)\b\s*[:=]?"
)
_SENDER_CONTEXT_RE = re.compile(
    r"(?i)(?:message-id|mail from\s*:|<<<\s*mail from|envelope[- ]from|sender\s*[:=]|"
    r"for (?:more )?(?:information|assistance|help)|please contact|contact (?:the |your )?"
    r"(?:postmaster|administrator|helpdesk|support)|send (?:an )?e?-?mail to|write to|"
    r"questions|\bid\s*<|\bfrom\s*<)"
)
_ROLE_LOCAL = frozenset(
    {
        "postmaster",
        "mailer-daemon",
        "mailerdaemon",
        "abuse",
        "hostmaster",
        "webmaster",
        "noc",
        "root",
        "daemon",
        "nobody",
        "help",
        "support",
        "noreply",
        "no-reply",
    }
)

_DELAY_RE = re.compile(
    r"(?i)(?:this is (?:just )?a warning|warning message only|will (?:continue|keep) (?:to )?(?:try|retry|attempt)|"
    r"still (?:being )?(?:trying|retried|attempting)|has not (?:yet )?been delivered|"
    r"not yet been delivered|delivery (?:is|has been) delayed|delivery delayed|"
    r"do not need to resend|will be retried|will try again|delay(?:ed)? (?:mail|delivery)|"
    r"temporarily (?:unable|deferred)|is delayed)"
)
_PERMANENT_RE = re.compile(
    r"(?i)(?:permanent(?:ly)?|i've given up|giving up|have given up|fatal|could not be delivered|"
    r"undeliverable|failed permanently|was not delivered|delivery has failed|were not delivered|"
    r"delivery failed|has been rejected|couldn't be delivered)"
)


@dataclass(frozen=True, kw_only=True)
class TextFailure:
    """A recipient found in human-readable bounce text with the lines about it."""

    recipient: str
    diagnostic: str
    strong: bool


def cut_returned(text: str) -> tuple[str, str]:
    """Split `text` into (report prose, returned message) at the first marker or header block."""
    text = text[:_MAX_TEXT]
    cut = len(text)
    m = _CUT_RE.search(text)
    if m is not None and m.start() > 0:
        cut = m.start()
    h = _HEADER_START_RE.search(text)
    if h is not None and 0 < h.start() < cut:
        cut = h.start()
    return text[:cut], text[cut:]


def is_delayed(text: str) -> bool:
    """True when the prose says delivery is only delayed (a warning), not failed."""
    return bool(_DELAY_RE.search(text)) and not _PERMANENT_RE.search(text)


def _strong_position(line: str, start: int) -> bool:
    """An address where MTAs list failed recipients: alone at the start of a line, or after
    a recipient label ("RCPT TO:", "Recipient:", "to <", "failed:")."""
    before = line[:start]
    lead = before.strip().strip("<\"'(").strip()
    if not lead:
        return True
    return bool(_RECIPIENT_LABEL_RE.search(before))


_RECIPIENT_LABEL_RE = re.compile(
    r"(?i)(?:rcpt to|\bto(?=\s*<)|(?:sent|delivered|deliver|delivery|mail|message|reach) to|"
    r"dda:smtp|recipient|recipients|address|addressee|\buser|failed|\bfor|"
    r"delivered to|deliver to|account|mailbox|destinatario|destinataire|empfänger)"
    r"\s*(?:\(s\))?\s*[:<\"'(=]*\s*$"
)


def _clean(addr: str) -> str:
    return addr.strip(".'\"<>").lower()


def find_failures(
    text: str,
    *,
    exclude: Collection[str] = (),
    weak_exclude: Collection[str] = (),
    failed_hint: Collection[str] = (),
) -> list[TextFailure]:
    """Failed recipients in report prose (already cut from the returned message).

    `exclude` are addresses known not to be failed recipients (the bounce's own From, the
    original sender); `weak_exclude` (the bounce's To) are ignored only in running prose, since
    people do send to themselves. `failed_hint` are addresses the message names as failed elsewhere
    (X-Failed-Recipients); when given, only they are reported.
    """
    excluded = {a.lower() for a in exclude}
    weak_excluded = {a.lower() for a in weak_exclude}
    hints = [a.lower() for a in failed_hint if a]
    lines = text.splitlines()[:3000]
    hits: list[tuple[int, str, bool]] = []
    for index, line in enumerate(lines):
        if _SKIP_LINE_RE.match(line):
            continue
        for m in re.finditer(r"[^\s<>\"'(),;:\[\]]+@[^\s<>\"'(),;:\[\]]+", line):
            token = m.group(0)
            start = m.start()
            key, eq, rest = token.partition("=")
            if eq and "@" in rest and "@" not in key and len(key) <= 8 and key.isalpha():
                token, start = rest, start + len(key) + 1
            found = addresses(token)
            if not found:
                continue
            addr = _clean(found[0])
            if not addr or addr in excluded:
                continue
            context = line[max(0, start - 40) : start]
            if _SENDER_CONTEXT_RE.search(context):
                continue
            strong = _strong_position(line, start)
            if not strong and addr in weak_excluded:
                continue
            hits.append((index, addr, strong))
    if (
        hints
        and not any(h[1] in hints for h in hits)
        and any(h[2] and h[1] not in weak_excluded for h in hits)
    ):
        hints = []  # the header disagrees with the text (rewritten or anonymised): trust the text
    if hints:
        hits = [h for h in hits if h[1] in hints]
        known = {h[1] for h in hits}
        hits.extend((len(lines), h, True) for h in hints if h not in known)
    elif any(strong for _, _, strong in hits):
        hits = [h for h in hits if h[2]]
    else:
        hits = [h for h in hits if h[1].split("@", 1)[0] not in _ROLE_LOCAL]

    order: list[str] = []
    blocks: dict[str, list[str]] = {}
    strong_of: dict[str, bool] = {}
    hit_lines: dict[int, set[str]] = {}
    for i, a, _ in hits:
        hit_lines.setdefault(i, set()).add(a)
    for index, addr, strong in hits:
        if addr not in blocks:
            order.append(addr)
            blocks[addr] = []
            strong_of[addr] = strong
        strong_of[addr] = strong_of[addr] or strong
        block = _block(lines, index, addr, hit_lines)
        if block and block not in blocks[addr]:
            blocks[addr].append(block)
    return [
        TextFailure(recipient=a, diagnostic=" ".join(blocks[a])[:2000], strong=strong_of[a])
        for a in order
    ]


def _block(lines: list[str], start: int, addr: str, hit_lines: dict[int, set[str]]) -> str:
    if start >= len(lines):
        return ""
    out = [lines[start].strip()]
    seen_content = bool(re.sub(r"\S+@\S+", "", lines[start]).strip(" \t:<>.-"))
    for j in range(start + 1, min(len(lines), start + _BLOCK_LINES)):
        line = lines[j]
        if hit_lines.get(j, {addr}) - {addr}:
            break
        if not line.strip():
            if seen_content:
                break
            continue
        out.append(line.strip())
        seen_content = True
    return " ".join(" ".join(out).split())
