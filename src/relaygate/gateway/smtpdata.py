"""Reading a message after DATA, a chunk at a time instead of a line at a time.

aiosmtpd 1.4's ``smtp_DATA`` awaits ``readuntil(b"\\r\\n")`` once per line (a 1 KB message is a
couple of dozen awaits, each a trip through the stream machinery: a tenth of an SMTP
submission's cost). ``read_message`` returns the same answer — the content with RFC 5321
§4.5.2 dot-stuffing removed, or which of aiosmtpd's two failures (a line longer than its
limit, more data than the size limit) it would report — from a few ``readuntil`` calls for
``<CRLF>.<CRLF>`` (the message's last line end and the terminating line). Where the terminator
may have begun in what was read already (at the very start, or when a chunk ends in a prefix
of it) only the rest of it is read, so bytes after the terminating line (pipelined commands)
stay in the reader. Searching for ``.<CRLF>`` alone stopped at every line that ends a
sentence: 1.1 ms instead of 0.2 ms for 100 KB of such lines.

The rare failure cases replay aiosmtpd's per-line bookkeeping over the data kept (at most the
size limit plus a few lines) to name the same failure aiosmtpd would name first. The tests
feed random streams to both and compare.
"""

from __future__ import annotations

import asyncio
import enum

TERMINATOR = b".\r\n"
CRLF = b"\r\n"
END = CRLF + TERMINATOR  # the terminating line with the line end before it


class DataState(enum.Enum):
    """aiosmtpd's ``_DataState``: the outcome of reading a message."""

    NOMINAL = enum.auto()
    TOO_LONG = enum.auto()  # "500 Line too long"
    TOO_MUCH = enum.auto()  # "552 Too much mail data"


async def read_message(
    reader: asyncio.StreamReader, *, size_limit: int | None, line_limit: int
) -> tuple[DataState, bytes]:
    """Read up to and including the line ``.<CRLF>``; return the outcome and, when NOMINAL,
    the message with dot-stuffing removed (b"" otherwise).

    ``line_limit`` is aiosmtpd's ``line_length_limit`` (a line including its CRLF may not be
    longer); ``size_limit`` its ``data_size_limit`` (None or 0: unlimited) on the bytes as
    sent, before unstuffing, without the terminating line. Memory stays bounded by the size
    limit (plus a few lines) whatever the client sends; the reader's own ``limit`` bounds
    each chunk.
    """
    parts: list[bytes] = []
    total = 0
    # Bytes kept for the verdict: past the size limit plus two maximal lines, aiosmtpd's
    # first failure has been decided, so more is read and dropped.
    keep = size_limit + 2 * line_limit + 8 if size_limit else None
    tail = CRLF  # the last bytes read: the message starts a line, as if after a CRLF
    trim = 0  # bytes of the terminating line already counted in ``parts``
    while True:
        overlap = _overlap(tail)
        if overlap:  # the terminator may have begun already: read just the rest of it
            chunk = await reader.readexactly(len(END) - overlap)
            end = chunk == END[overlap:]
            if end:  # the CRLF before the "." is the last line's; the rest is not content
                chunk = CRLF[overlap:]
                trim = max(0, overlap - len(CRLF))  # the "." (and "\r") read already
        else:  # the terminator, if it is coming, lies wholly ahead
            try:
                chunk = await reader.readuntil(END)
            except asyncio.LimitOverrunError as exc:  # not within the reader's limit
                chunk = await reader.read(exc.consumed)
                end = False
            else:
                chunk = chunk[: -len(TERMINATOR)]
                end = True
        total += len(chunk)
        if keep is None or total - len(chunk) < keep:
            parts.append(chunk)
        if end:
            break
        tail = (tail + chunk)[-4:]
    raw = b"".join(parts)
    if trim:
        total -= trim
        if len(raw) == total + trim:  # (else the end was dropped: too much mail anyway)
            raw = raw[:-trim]
    state = _verdict(
        raw, complete=keep is None or total <= keep, size_limit=size_limit, line_limit=line_limit
    )
    if state is not DataState.NOMINAL:
        return state, b""
    return DataState.NOMINAL, unstuff(raw)


def _overlap(tail: bytes) -> int:
    """How many of the last bytes of ``tail`` are the start of ``END``."""
    for n in (4, 3, 2, 1):
        if tail.endswith(END[:n]):
            return n
    return 0


def unstuff(raw: bytes) -> bytes:
    """Remove the leading dot of every line that starts with one (RFC 5321 §4.5.2)."""
    if raw.startswith(b"."):
        raw = raw[1:]
    return raw.replace(b"\r\n.", b"\r\n") if b"\r\n." in raw else raw


def _verdict(raw: bytes, *, complete: bool, size_limit: int | None, line_limit: int) -> DataState:
    """NOMINAL when nothing is wrong (the common case, decided without a loop); otherwise the
    failure aiosmtpd's line loop reaches first."""
    too_big = bool(size_limit) and (not complete or len(raw) > (size_limit or 0))
    if not too_big and (
        len(raw) < line_limit - 1
        or _short_lines(raw, line_limit)
        or max(map(len, raw.split(CRLF))) + 2 <= line_limit
    ):
        return DataState.NOMINAL
    return _replay(raw, size_limit=size_limit, line_limit=line_limit)


def _short_lines(raw: bytes, line_limit: int) -> bool:
    """True only if no line of ``raw`` (with its CRLF) is longer than ``line_limit``; False
    says nothing. A CRLF in every window of ``step + 1`` bytes puts consecutive line ends at
    most ``2 * step + 1`` bytes apart, so each line with its CRLF is at most ``2 * step + 2``
    long. A few hundred ``find``s instead of splitting a 100 KB message into its lines."""
    step = (line_limit - 2) // 2
    if step < 64:
        return False
    find = raw.find
    end = len(raw)
    for start in range(0, end, step):
        if find(CRLF, start, start + step + 1) < 0 and start + step < end:
            return False
    # the last line: from the last CRLF to the end of the data (no CRLF of its own)
    return end - (raw.rfind(CRLF) + 2) + 2 <= line_limit


def _replay(raw: bytes, *, size_limit: int | None, line_limit: int) -> DataState:
    """aiosmtpd 1.4.6's ``smtp_DATA`` bookkeeping, line by line, until its first failure.

    A line whose CRLF lies beyond ``line_limit`` bytes is an overrun of the stream's limit
    (TOO_LONG before the line is counted); otherwise the line's bytes are counted (TOO_MUCH
    past the size limit) and then its length is checked (TOO_LONG)."""
    pos = 0
    counted = 0
    size = len(raw)
    while pos < size:
        cut = raw.find(CRLF, pos)
        content = (cut if cut != -1 else size) - pos
        if content > line_limit:
            return DataState.TOO_LONG
        if cut == -1:  # the kept data ends inside a line that is not (yet) too long
            counted += content
            if size_limit and counted > size_limit:
                return DataState.TOO_MUCH
            break
        counted += content + 2
        if size_limit and counted > size_limit:
            return DataState.TOO_MUCH
        if content + 2 > line_limit:
            return DataState.TOO_LONG
        pos = cut + 2
    if size_limit and counted > size_limit:
        return DataState.TOO_MUCH
    return DataState.NOMINAL
