"""Open and click tracking at composition: signed tracking tokens and HTML rewriting.

Owns two pure things the composer calls once per recipient:

* **Tokens.** ``make_token`` packs (kind, account, message, recipient, issue time[, original
  URL]) into a compact binary record, appends a truncated HMAC-SHA256 (128 bits) made with a
  server key, and encodes it base64url without padding. ``read_token`` is the only way back: it
  returns ``None`` for anything malformed, forged, too long or of the wrong kind, and tries every
  key it is given so keys can be rotated (sign with the newest, accept the old ones for a while).
  Tokens are stateless: they keep working after the data retention purge, and since the original
  URL is inside the signed bytes they cannot be turned into an open redirect. They carry the time
  they were made (``issued_at``), so the endpoint can stop honouring them after a lifetime
  (``tracking_app``); a version 1 token (made before there was an issue time) reads with
  ``issued_at`` None.

  Binary layout (version 2), before base64url::

      0      version (0x02)
      1      flags: bit 0 = click (else open), bit 1 = URL is raw-deflate compressed
      2..    account id        unsigned LEB128 varint
      ..     message id        16 bytes (the 32 hex digits of "msg_<hex>")
      ..     recipient id      unsigned LEB128 varint
      ..     issued at         unsigned LEB128 varint, whole seconds since the epoch (UTC)
      ..     URL (clicks only) UTF-8, or raw deflate of it when that is shorter
      -16    tag               HMAC-SHA256(key, b"relaygate/tracking/v1\\0" + all of the above)[:16]

  Version 1 is the same without "issued at". An open token is 55 characters (small ids); a
  click token for a 100-character URL is about 170-200 (deflate helps on typical UTM-laden
  URLs, never hurts).

* **HTML rewriting.** ``rewrite_html`` changes only the value of the ``href`` of ``<a>`` and
  ``<area>`` start tags whose link is absolute http(s), and adds a 1x1 pixel before the last real
  ``</body>``. Everything else is preserved byte for byte: the document is tokenized with the
  standard library's ``html.parser`` only to find spans, never re-serialised. Links inside
  comments (including ``<!--[if mso]>`` conditional comments), ``<style>`` and ``<script>`` are
  not tags to the tokenizer and are therefore never touched.

Trusts: the key(s) given by the caller (secret; never logged here). Everything inside a token is
trusted only after the tag verifies.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import html
import re
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Literal

__all__ = [
    "MAX_TOKEN_CHARS",
    "PIXEL_ALT",
    "TOKEN_VERSION",
    "TrackingRef",
    "click_url",
    "make_token",
    "open_url",
    "pixel_tag",
    "read_token",
    "rewrite_html",
    "track_html",
    "trackable_url",
]

TrackKind = Literal["o", "c"]

TOKEN_VERSION = 2
_VERSIONS = frozenset({1, TOKEN_VERSION})
MAX_TOKEN_CHARS = 8192
"""Longest token ``read_token`` looks at and ``make_token`` produces."""
MIN_KEY_BYTES = 16
TAG_BYTES = 16
PIXEL_ALT = ""

_CONTEXT = b"relaygate/tracking/v1\x00"
_FLAG_CLICK = 0x01
_FLAG_DEFLATE = 0x02
_KNOWN_FLAGS = _FLAG_CLICK | _FLAG_DEFLATE
_MESSAGE_ID = re.compile(r"msg_[0-9a-f]{32}")
_MAX_VARINT_BYTES = 10
_MAX_URL_BYTES = 6 * 1024  # what fits in MAX_TOKEN_CHARS with room to spare
_URL_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True, kw_only=True)
class TrackingRef:
    """What a verified token says. ``url`` is set for clicks and ``None`` for opens."""

    kind: TrackKind
    account_id: int
    message_id: str
    recipient_id: int
    url: str | None
    key_index: int
    """Which of the keys given to ``read_token`` verified it (0 = the first)."""
    issued_at: int | None = None
    """When the token was made (seconds since the epoch); None for a version 1 token."""


# --------------------------------------------------------------------------- tokens


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_varint(data: bytes, pos: int) -> tuple[int, int] | None:
    value = 0
    for i in range(_MAX_VARINT_BYTES):
        if pos + i >= len(data):
            return None
        byte = data[pos + i]
        value |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            if byte == 0 and i > 0:
                return None  # non-minimal encoding: one value, one spelling
            return value, pos + i + 1
    return None


def _tag(key: bytes, body: bytes) -> bytes:
    return hmac.new(key, _CONTEXT + body, hashlib.sha256).digest()[:TAG_BYTES]


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


_B64URL = re.compile(r"[A-Za-z0-9_-]+")


def _b64decode(token: str) -> bytes | None:
    if not _B64URL.fullmatch(token) or len(token) % 4 == 1:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        return None
    if _b64encode(raw) != token:
        return None  # non-canonical trailing bits: one token per record
    return raw


def _deflate(data: bytes) -> bytes:
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    return comp.compress(data) + comp.flush()


def _inflate(data: bytes, limit: int) -> bytes | None:
    decomp = zlib.decompressobj(-15)
    try:
        out = decomp.decompress(data, limit + 1)
    except zlib.error:
        return None
    if len(out) > limit or decomp.unconsumed_tail or not decomp.eof or decomp.unused_data:
        return None
    return out


def make_token(
    *,
    kind: TrackKind,
    account_id: int,
    message_id: str,
    recipient_id: int,
    url: str | None,
    key: bytes,
    issued_at: float,
) -> str:
    """A signed, URL-safe tracking token. Raises ``ValueError`` on inputs it cannot encode.

    ``message_id`` is ``"msg_"`` + 32 lowercase hex digits. ``url`` is required for clicks
    (absolute http/https, no control characters, at most 6 KiB of UTF-8) and must be ``None`` for
    opens. ``issued_at`` (the clock's ``now()``) is kept to the whole second. The same inputs
    and key always give the same token.
    """
    if kind not in ("o", "c"):
        raise ValueError("kind must be 'o' or 'c'")
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"tracking key must be at least {MIN_KEY_BYTES} bytes")
    if isinstance(account_id, bool) or not isinstance(account_id, int) or account_id < 0:
        raise ValueError("account_id must be a non-negative int")
    if isinstance(recipient_id, bool) or not isinstance(recipient_id, int) or recipient_id < 0:
        raise ValueError("recipient_id must be a non-negative int")
    if account_id >= 1 << 63 or recipient_id >= 1 << 63:
        raise ValueError("ids must fit in 63 bits")
    if not 0 <= issued_at < 1 << 40:  # (NaN fails too)
        raise ValueError("issued_at must be a time since the epoch")
    if not _MESSAGE_ID.fullmatch(message_id):
        raise ValueError("message_id must be 'msg_' + 32 lowercase hex digits")
    flags = 0
    url_part = b""
    if kind == "c":
        if url is None:
            raise ValueError("a click token needs the original url")
        if trackable_url(url) != url:
            raise ValueError("url must be an absolute http(s) URL without control characters")
        raw = url.encode("utf-8")
        if len(raw) > _MAX_URL_BYTES:
            raise ValueError("url too long to track")
        packed = _deflate(raw)
        flags |= _FLAG_CLICK
        if len(packed) < len(raw):
            flags |= _FLAG_DEFLATE
            url_part = packed
        else:
            url_part = raw
    elif url is not None:
        raise ValueError("an open token carries no url")
    body = (
        bytes((TOKEN_VERSION, flags))
        + _varint(account_id)
        + bytes.fromhex(message_id[4:])
        + _varint(recipient_id)
        + _varint(int(issued_at))
        + url_part
    )
    token = _b64encode(body + _tag(key, body))
    if len(token) > MAX_TOKEN_CHARS:
        raise ValueError("url too long to track")
    return token


def read_token(
    token: str, *, keys: Sequence[bytes], kind: TrackKind | None = None
) -> TrackingRef | None:
    """Verify and decode ``token`` with any of ``keys``; ``None`` unless it is genuine.

    Returns ``None`` for: wrong alphabet or padding, over ``MAX_TOKEN_CHARS``, unknown version or
    flags, truncated or trailing bytes, a tag that no key produces (compared in constant time),
    a kind other than ``kind`` (when given), or a click URL that is not http(s).
    """
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_CHARS:
        return None
    raw = _b64decode(token)
    if raw is None or len(raw) < 2 + 1 + 16 + 1 + TAG_BYTES:
        return None
    body, tag = raw[:-TAG_BYTES], raw[-TAG_BYTES:]
    key_index = -1
    for i, key in enumerate(keys):
        if len(key) >= MIN_KEY_BYTES and hmac.compare_digest(_tag(key, body), tag):
            key_index = i
            break
    if key_index < 0:
        return None
    version, flags = body[0], body[1]
    if version not in _VERSIONS or flags & ~_KNOWN_FLAGS:
        return None
    got = _read_varint(body, 2)
    if got is None:
        return None
    account_id, pos = got
    if pos + 16 > len(body):
        return None
    message_id = "msg_" + body[pos : pos + 16].hex()
    got = _read_varint(body, pos + 16)
    if got is None:
        return None
    recipient_id, pos = got
    issued_at: int | None = None
    if version >= 2:
        got = _read_varint(body, pos)
        if got is None:
            return None
        issued_at, pos = got
    rest = body[pos:]
    token_kind: TrackKind = "c" if flags & _FLAG_CLICK else "o"
    if kind is not None and token_kind != kind:
        return None
    url: str | None = None
    if token_kind == "c":
        data = _inflate(rest, _MAX_URL_BYTES) if flags & _FLAG_DEFLATE else rest
        if data is None:
            return None
        try:
            url = data.decode("utf-8")
        except UnicodeDecodeError:
            return None
        if trackable_url(url) != url:
            return None
    elif rest or flags & _FLAG_DEFLATE:
        return None
    return TrackingRef(
        kind=token_kind,
        account_id=account_id,
        message_id=message_id,
        recipient_id=recipient_id,
        url=url,
        key_index=key_index,
        issued_at=issued_at,
    )


# --------------------------------------------------------------------------- URLs

_HTTP_URL = re.compile(r"https?://[^/?#\\\s]", re.IGNORECASE)
_STRIP = "".join(chr(c) for c in range(0x21))  # C0 controls and space, as WHATWG strips


def trackable_url(href: str) -> str | None:
    """The URL a browser would follow for this (already entity-decoded) href, if it is http(s).

    Leading and trailing C0 controls and spaces are stripped and tabs/newlines removed, as
    browsers do. Returns ``None`` for relative links, anchors, mailto:, tel:, javascript:, other
    schemes, scheme-relative ``//host`` links, and URLs with other control characters.
    """
    url = href.strip(_STRIP).replace("\t", "").replace("\n", "").replace("\r", "")
    if not _HTTP_URL.match(url) or _URL_CONTROL.search(url):
        return None
    return url


def click_url(public_url: str, token: str) -> str:
    """``public_url`` + ``/t/c/<token>``."""
    return f"{public_url.rstrip('/')}/t/c/{token}"


def open_url(public_url: str, token: str) -> str:
    """``public_url`` + ``/t/o/<token>``."""
    return f"{public_url.rstrip('/')}/t/o/{token}"


def pixel_tag(pixel_url: str) -> str:
    """The 1x1 tracking image element."""
    return (
        f'<img src="{html.escape(pixel_url, quote=True)}" width="1" height="1" alt="{PIXEL_ALT}" '
        'style="display:block;border:0;width:1px;height:1px" />'
    )


# --------------------------------------------------------------------------- HTML rewriting

# The same patterns html.parser uses to split a start tag, so our spans agree with its attrs.
_TAGNAME = re.compile(r"([a-zA-Z][^\t\n\r\f />\x00]*)(?:\s|/(?!>))*")
_ATTR = re.compile(
    r"((?<=[\'\"\s/])[^\s/>][^\s/=>]*)(\s*=+\s*"
    r"(\'[^\']*\'|\"[^\"]*\"|(?![\'\"])[^>\s]*))?(?:\s|/(?!>))*"
)
_SAFE_UNQUOTED = re.compile(r"[A-Za-z0-9._~:/?#\[\]@!$()*+,;%-]+")
_LINK_TAGS = frozenset({"a", "area"})
# Elements whose content browsers read as text although html.parser sees tags in it.
_TEXT_ONLY_TAGS = frozenset({"title", "textarea", "xmp", "iframe", "noembed", "noframes"})
NOTRACK_ATTR = "data-relaygate-notrack"


@dataclass(frozen=True, kw_only=True)
class _Edit:
    start: int
    end: int
    text: str


def _attr_spans(raw: str) -> list[tuple[str, str | None, int, int]] | None:
    """(lowercased name, decoded value, value start, value end) for each attribute of a tag."""
    m = _TAGNAME.match(raw, 1)
    if not m:
        return None
    k = m.end()
    out: list[tuple[str, str | None, int, int]] = []
    while k < len(raw):
        am = _ATTR.match(raw, k)
        if not am:
            break
        name, rest, value = am.group(1, 2, 3)
        vstart, vend = am.span(3)
        decoded: str | None
        if not rest:
            decoded = None
        else:
            decoded = value
            if value[:1] == "'" == value[-1:] or value[:1] == '"' == value[-1:]:
                decoded = value[1:-1]
            if decoded:
                decoded = html.unescape(decoded)
        out.append((name.lower(), decoded, vstart, vend))
        k = am.end()
    return out


class _Scanner(HTMLParser):
    """Finds link href spans and the last real </body>; records, never re-serialises."""

    def __init__(self, source: str, make_click_url: Callable[[str], str | None]) -> None:
        super().__init__(convert_charrefs=True)
        self._source = source
        self._make = make_click_url
        self._line_starts = [0]
        for m in re.finditer("\n", source):
            self._line_starts.append(m.end())
        self.edits: list[_Edit] = []
        self.body_end: int | None = None
        self._text_only: str | None = None  # inside <title>, <textarea>...: markup is text

    def _in_text_only(self, tag: str, *, end: bool) -> bool:
        if self._text_only is None:
            if not end and tag in _TEXT_ONLY_TAGS:
                self._text_only = tag
            return False
        if end and tag == self._text_only:
            self._text_only = None
        return True

    def _offset(self) -> int:
        line, col = self.getpos()
        return self._line_starts[line - 1] + col

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._in_text_only(tag, end=False) or tag not in _LINK_TAGS:
            return
        raw = self.get_starttag_text()
        if raw is None:
            return
        start = self._offset()
        if self._source[start : start + len(raw)] != raw:
            return  # position bookkeeping disagrees: leave this tag alone
        spans = _attr_spans(raw)
        if spans is None or [(n, v) for n, v, _, _ in spans] != [(n.lower(), v) for n, v in attrs]:
            return
        if any(name == NOTRACK_ATTR for name, _, _, _ in spans):
            return
        href = next((s for s in spans if s[0] == "href"), None)  # browsers use the first
        if href is None:
            return
        _, value, vstart, vend = href
        if value is None:
            return
        url = trackable_url(value)
        if url is None:
            return
        new_url = self._make(url)
        if new_url is None:
            return
        quote = raw[vstart] if raw[vstart : vstart + 1] in ("'", '"') else ""
        if quote:
            text = quote + html.escape(new_url, quote=True) + quote
        elif _SAFE_UNQUOTED.fullmatch(new_url):
            text = new_url
        else:
            text = '"' + html.escape(new_url, quote=True) + '"'
        self.edits.append(_Edit(start=start + vstart, end=start + vend, text=text))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)  # browsers ignore the "/": <title/> opens a title

    def handle_endtag(self, tag: str) -> None:
        if self._in_text_only(tag, end=True):
            return
        if tag == "body":
            self.body_end = self._offset()


def rewrite_html(
    html_text: str,
    *,
    make_click_url: Callable[[str], str | None],
    pixel_url: str | None,
) -> str:
    """Rewrite http(s) links through ``make_click_url`` and add the open pixel.

    ``make_click_url`` gets the original URL (entities decoded, surrounding whitespace stripped)
    and returns the tracking URL, or ``None`` to leave that link alone. Only the first ``href``
    value of ``<a>``/``<area>`` start tags changes; the quoting style is kept and the new value is
    HTML-escaped. Links carrying ``data-relaygate-notrack`` are left alone (the marker stays).
    With ``pixel_url``, a 1x1 image goes just before the last ``</body>`` end tag outside comments
    and raw-text elements, or at the very end when there is none (but not when the document ends
    inside an unfinished tag, comment or ``<script>``, where it would be swallowed or would eat
    the text before it). Never raises on odd HTML: where the tokenizer gives up or reaches an
    unfinished construct, links after that point are left as they are.
    """
    scanner = _Scanner(html_text, make_click_url)
    # Only feed(), never close(): feed() stops at the first unfinished construct (unclosed
    # comment, attribute quote, <script>), and what close() would then do is html.parser's own
    # error recovery, which differs from browsers (for which the rest is inside that construct).
    # Appending the pixel at the very end is safe only when the document ends in plain text.
    end_is_text = False
    try:
        scanner.feed(html_text)
        end_is_text = scanner.cdata_elem is None and "<" not in scanner.rawdata
    except Exception:  # html.parser/_markupbase can raise AssertionError on odd markup
        pass
    edits = list(scanner.edits)
    if pixel_url is not None:
        at = scanner.body_end
        if at is None and end_is_text:
            at = len(html_text)
        if at is not None:
            edits.append(_Edit(start=at, end=at, text=pixel_tag(pixel_url)))
    edits.sort(key=lambda e: (e.start, e.end))
    out: list[str] = []
    pos = 0
    for e in edits:
        if e.start < pos:
            continue  # cannot happen with well-formed spans; never corrupt the document
        out.append(html_text[pos : e.start])
        out.append(e.text)
        pos = e.end
    out.append(html_text[pos:])
    return "".join(out)


def track_html(
    html_text: str,
    *,
    public_url: str,
    key: bytes,
    account_id: int,
    message_id: str,
    recipient_id: int,
    issued_at: float,
    opens: bool = True,
    clicks: bool = True,
) -> str:
    """The one call the composer makes per recipient: links and pixel for this recipient.

    Links whose URL cannot be put in a token (too long) are left untracked.
    """

    def make_click(url: str) -> str | None:
        try:
            token = make_token(
                kind="c",
                account_id=account_id,
                message_id=message_id,
                recipient_id=recipient_id,
                url=url,
                key=key,
                issued_at=issued_at,
            )
        except ValueError:
            return None
        return click_url(public_url, token)

    pixel = None
    if opens:
        pixel = open_url(
            public_url,
            make_token(
                kind="o",
                account_id=account_id,
                message_id=message_id,
                recipient_id=recipient_id,
                url=None,
                key=key,
                issued_at=issued_at,
            ),
        )
    if not clicks and pixel is None:
        return html_text
    return rewrite_html(
        html_text,
        make_click_url=make_click if clicks else (lambda _url: None),
        pixel_url=pixel,
    )
