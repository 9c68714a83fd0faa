"""Header-block work on a message submitted as raw MIME (SMTP): read it, strip fields, prepend.

Owns the rule that a submitted message is relayed as is: only the header block is ever looked at,
the body bytes after the first empty line are never decoded or re-encoded, and everything
relaygate adds (Received, Message-ID, Date) is prepended as raw header lines in front of the
original bytes. Line endings are kept as the client sent them. Fields a submission may not hand
on (``DROPPED``: Bcc, forged trace and authentication results) are removed from the header block.

Trust: the bytes are stranger-controlled. Parsing is ``email``'s header parser (what
``BytesHeaderParser`` does, but decoding UTF-8 as RFC 6532 allows instead of ASCII); it never
raises on malformed input. Invalid UTF-8 survives as surrogates and is refused or replaced
before anything reaches the store, and every value copied into a header we write is reduced
to printable ASCII without line breaks first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.errors import HeaderParseError
from email.header import decode_header, make_header
from email.message import Message
from email.parser import HeaderParser
from email.policy import Compat32
from email.utils import formatdate, getaddresses

TAGS_HEADER = b"x-sm-tags"


class _RawValues(Compat32):
    """Header values exactly as parsed (str, folding kept); no per-field object construction.

    The modern policies build a structured header object per field read (~100 µs each), which
    is most of the cost of a submission; we need only addresses, the subject and presence.
    """

    def header_fetch_parse(self, name: str, value: str) -> str:
        return value


_POLICY = _RawValues()
_PARSER = HeaderParser(policy=_POLICY)
_SAFE = re.compile(r"[^A-Za-z0-9.:\[\]_-]")


@dataclass(frozen=True, kw_only=True)
class HeaderBlock:
    """The parts of a submitted message admission needs; ``head + rest`` is the original (minus tags)."""

    head: bytes  # header lines with their line endings, X-SM-Tags removed
    rest: bytes  # the empty line that ends the header block and the body, untouched
    tags: tuple[str, ...]  # raw comma-separated values of every X-SM-Tags field, split
    headers: Message  # the parsed header block (no body); values are raw strings


def split_head(data: bytes) -> tuple[bytes, bytes]:
    """Split at the first empty line: (header lines incl. their endings, the rest incl. the empty line)."""
    if data.startswith((b"\r\n", b"\n")):
        return b"", data
    crlf = data.find(b"\r\n\r\n")
    # a "\n\n" can only come first if it starts before that "\r\n\r\n" ends: look no further
    # (on a 100 KB message with CRLF line endings the whole-message search was ~0.1 ms)
    lf = data.find(b"\n\n", 0, len(data) if crlf < 0 else crlf + 3)
    ends = [i + n for i, n in ((crlf, 2), (lf, 1)) if i >= 0]
    if not ends:
        return data, b""
    cut = min(ends)
    return data[:cut], data[cut:]


#: Fields a submission may not hand on, removed from the header block with their folded lines.
#: Bcc: the blind recipients are in the envelope; the field would show them to everyone (a
#: submission server removes it, RFC 5322 §3.6.3, RFC 6409 §8.1). The others are trace and
#: authentication results only a receiving system may write — a client's own would be forged
#: claims (a DKIM-Signature, ARC set or Authentication-Results vouching for mail it never
#: checked, a Return-Path the final delivery adds, Resent-* blocks of a resend that did not
#: happen). ``X-SM-Tags`` is removed too; its values become the message's tags.
DROPPED = frozenset(
    {b"bcc", b"return-path", b"dkim-signature", b"authentication-results", b"received-spf"}
)
DROPPED_PREFIXES = (b"arc-", b"resent-")
_NAME = rb"[\x21-\x39\x3b-\x7e]"  # a field-name character (RFC 5322 §2.2)
_FIELD_NAME = re.compile(_NAME + rb"+\Z")
_STRIPPED_NAMES = (TAGS_HEADER, *sorted(DROPPED), *DROPPED_PREFIXES)
#: Any of those names right after a LF. With the lower-cased block's start, and any bare CR
#: (``bytes.splitlines`` and the email parser break lines at CR, LF and CRLF), this finds every
#: block the line-by-line pass would change, and more (it does not look for the colon): the
#: pass decides. Searches that start at one literal byte cost ~0.5 µs each on a 200-byte block;
#: one search at every position (``[\r\n]`` and the names, IGNORECASE) cost ~8 µs.
_STRIPPED = re.compile(b"\n(?:" + b"|".join(map(re.escape, _STRIPPED_NAMES)) + b")")
_BARE_CR = re.compile(b"\r(?!\n)")


def strip_fields(head: bytes) -> tuple[bytes, list[bytes]]:
    """Remove the ``DROPPED`` fields and ``X-SM-Tags`` (case-insensitive, each with its folded
    lines); return the head and the X-SM-Tags values."""
    low = head.lower()
    if (
        not low.startswith(_STRIPPED_NAMES)
        and _STRIPPED.search(low) is None
        and _BARE_CR.search(low) is None
    ):
        return head, []
    kept: list[bytes] = []
    values: list[bytes] = []
    state = 0  # of the last field line: 0 kept, 1 X-SM-Tags, 2 dropped
    for line in head.splitlines(keepends=True):
        if line[:1] in (b" ", b"\t"):
            if state == 1:
                values[-1] += line
            elif state == 0:
                kept.append(line)
            continue
        field, colon, value = line.partition(b":")
        name = field.rstrip(b" \t").lower() if colon else b""
        if name == TAGS_HEADER:
            state = 1
            values.append(value)
        elif name in DROPPED or (name.startswith(DROPPED_PREFIXES) and _FIELD_NAME.match(name)):
            state = 2
        else:
            state = 0
            kept.append(line)
    return b"".join(kept), values


def split_tags(values: list[bytes]) -> tuple[str, ...]:
    """``X-SM-Tags: a, b`` (possibly several fields, possibly folded) → ("a", "b"), order kept."""
    out: list[str] = []
    for value in values:
        text = value.decode("utf-8", "replace").replace("\r", "").replace("\n", "")
        out.extend(t.strip() for t in text.split(",") if t.strip())
    return tuple(dict.fromkeys(out))


_FIELD_LINE = re.compile(r"[\041-\071\073-\176]+:")  # a field name and its colon
_ODD_BREAKS = re.compile("[\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")  # str.splitlines-only breaks


def parse_headers(text: str) -> Message:
    """What ``_PARSER.parsestr(text)`` returns, for a block of well-formed header fields.

    The feed parser is a generator pipeline per line (~5% of a submission's cost); a block in
    which every line is a field (``name:`` with the parser's own name pattern) or a folded
    continuation of one is split here with the parser's rules (its line breaks are CRLF, CR and
    LF; values via the policy's ``header_source_parse``). Anything else (defects, an envelope
    ``From `` line, a line that starts a body) is left to the parser itself.
    """
    if _ODD_BREAKS.search(text) is None:
        fields: list[list[str]] = []
        for line in text.splitlines(keepends=True):
            if line[0] in " \t":
                if not fields:
                    break
                fields[-1].append(line)
            elif _FIELD_LINE.match(line):
                fields.append([line])
            else:
                break
        else:
            msg = Message(policy=_POLICY)
            for lines in fields:
                msg.set_raw(*_POLICY.header_source_parse(lines))
            msg.set_payload("")
            return msg
    return _PARSER.parsestr(text)


def read_head(data: bytes) -> HeaderBlock:
    head, rest = split_head(data)
    head, tag_values = strip_fields(head)
    return HeaderBlock(
        head=head,
        rest=rest,
        tags=split_tags(tag_values),
        headers=parse_headers(head.decode("utf-8", "surrogateescape")),
    )


def _unfold(value: str) -> str:
    return value.replace("\r\n", "").replace("\n", "")


_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_ADDR = rf"{_ATEXT}(?:\.{_ATEXT})*@{_ATEXT}(?:\.{_ATEXT})*"
_ONE_MAILBOX = re.compile(
    rf"[ \t]*(?:[A-Za-z0-9]+(?: +[A-Za-z0-9]+)*[ \t]*)?<({_ADDR})>[ \t]*|[ \t]*({_ADDR})[ \t]*"
)


def header_addresses(headers: Message, name: str) -> list[str]:
    """addr-specs of every mailbox in every ``name`` field (groups flattened); [] when absent.

    A field holding one plain mailbox (``a@b.c``, ``<a@b.c>``, ``Name <a@b.c>``: ASCII
    dot-atoms, a display name of letters, digits and spaces) is read by one regular expression;
    everything else by ``getaddresses`` (same answers: tested against each other)."""
    values = [_unfold(v) for v in headers.get_all(name, [])]
    plain = [_ONE_MAILBOX.fullmatch(v) for v in values]
    if all(plain):
        return [m[1] or m[2] for m in plain if m is not None]
    return [
        spec for _display, spec in getaddresses(values) if spec and "@" in spec and _encodable(spec)
    ]


def header_text(headers: Message, name: str, *, limit: int = 998) -> str:
    """The decoded (RFC 2047), unfolded value of the first ``name`` field; valid UTF-8; "" when absent."""
    value = headers.get(name)
    if value is None:
        return ""
    text = _unfold(str(value))
    if "=?" in text:
        try:
            text = str(make_header(decode_header(text)))
        except (HeaderParseError, UnicodeError, LookupError, ValueError):
            pass
    text = " ".join(text.split())[:limit]
    return text if _encodable(text) else text.encode("utf-8", "replace").decode("utf-8")


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def safe_token(text: str, *, limit: int = 100) -> str:
    """A client-supplied word (HELO name, address) made safe to copy into a header we write."""
    return _SAFE.sub("?", text[:limit]) or "unknown"


def received(
    *, helo: str, peer_ip: str, hostname: str, protocol: str, msg_id: str, now: float
) -> bytes:
    """Our trace header (RFC 5321 §4.4); no reverse DNS lookup (nothing leaves loopback in tests)."""
    return (
        f"Received: from {safe_token(helo)} ([{safe_token(peer_ip, limit=64)}])\r\n"
        f"\tby {hostname} (relaygate) with {protocol} id {msg_id};\r\n"
        f"\t{formatdate(now, usegmt=True)}\r\n"
    ).encode("ascii")
