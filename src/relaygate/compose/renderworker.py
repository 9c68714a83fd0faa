"""A template render worker: the child process of :mod:`relaygate.compose.renderer`.

Run as ``python -m relaygate.compose.renderworker`` with pipes on fds 0 and 1. It owns nothing but
the wire between the two: frames of a 4-byte big-endian length and a body.

* parent → worker: a pickle of ``(op, slug, subject, html, text, variables)``; ``op`` is
  ``"render"`` or ``"check"`` (compile only). The parent is trusted: it wrote this program. The
  render limits are the JSON object in ``argv[1]``.
* worker → parent: one byte of kind, then ``READY`` (nothing: sent once, after the imports);
  ``RENDERED`` (three 4-byte lengths, then subject, html and text as UTF-8 with surrogates
  passed through); ``REFUSED`` (a ``TemplateError.detail``, UTF-8); ``FAULT`` (nothing: a bug of
  ours, the parent answers "retry later").

Requests are pipelined: the worker answers them in order, and writes the answers to requests
that were waiting together in one write (at most ``_BATCH_SECONDS`` late), so a busy parent
wakes once for many.

Trust: the templates and variables it renders are a stranger's. It runs them in
:func:`relaygate.compose.templates.render`'s sandbox, with its own soft deadline; the parent
kills it at the hard one. Replies are plain bytes the parent parses without unpickling, so a
worker that a template took over cannot run code in the parent. SIGINT and SIGTERM are ignored
(the service drains first); the worker exits when its input closes.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import pickle
import select
import signal
import struct
import sys
import time

from relaygate.compose.templates import (
    DEFAULT_LIMITS,
    Rendered,
    RenderLimits,
    Template,
    TemplateError,
    compile_check,
    render,
    system_catalog,
)

READY, RENDERED, REFUSED, FAULT = b"R", b"O", b"E", b"F"
_LENGTH = struct.Struct(">I")
_PARTS = struct.Struct(">III")
#: Replies are written together while requests keep coming, but never held longer than this.
_BATCH_SECONDS = 0.001
log = logging.getLogger("relaygate.render")


def frame(body: bytes) -> bytes:
    return _LENGTH.pack(len(body)) + body


def encode_rendered(rendered: Rendered) -> bytes:
    parts = [
        p.encode("utf-8", "surrogatepass") for p in (rendered.subject, rendered.html, rendered.text)
    ]
    return RENDERED + _PARTS.pack(*(len(p) for p in parts)) + b"".join(parts)


def decode_reply(body: bytes) -> Rendered | TemplateError | None:
    """A worker's reply: what it rendered, the TemplateError it refused with, or None (FAULT).
    Raises ValueError for anything else (a worker that does not speak the protocol)."""
    kind = body[:1]
    if kind == RENDERED:
        lengths = _PARTS.unpack_from(body, 1)
        if _PARTS.size + 1 + sum(lengths) != len(body):
            raise ValueError("render worker sent a malformed reply")
        texts = []
        at = 1 + _PARTS.size
        for n in lengths:
            texts.append(body[at : at + n].decode("utf-8", "surrogatepass"))
            at += n
        return Rendered(subject=texts[0], html=texts[1], text=texts[2])
    if kind == REFUSED:
        return TemplateError(body[1:].decode("utf-8", "replace"))
    if kind == FAULT and len(body) == 1:
        return None
    raise ValueError("render worker sent an unknown reply")


def _frames(buf: bytearray) -> list[bytes]:
    """The complete frames at the start of ``buf`` (removed from it)."""
    out = []
    while len(buf) >= _LENGTH.size:
        size = _LENGTH.unpack_from(buf)[0]
        if len(buf) < _LENGTH.size + size:
            break
        out.append(bytes(buf[_LENGTH.size : _LENGTH.size + size]))
        del buf[: _LENGTH.size + size]
    return out


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _answer(request: bytes, limits: RenderLimits) -> bytes:
    try:
        op, slug, subject, html, text, variables = pickle.loads(request)  # noqa: S301 (our parent)
        template = Template(slug=slug, subject=subject, html=html, text=text)
        if op == "check":
            compile_check(template, limits=limits)
            return encode_rendered(Rendered(subject="", html="", text=""))
        return encode_rendered(render(template, variables, limits=limits))
    except TemplateError as exc:
        return REFUSED + exc.detail.encode("utf-8", "replace")
    except Exception:
        log.exception("render worker fault")
        return FAULT


def main() -> None:
    limits = RenderLimits(**json.loads(sys.argv[1])) if len(sys.argv) > 1 else DEFAULT_LIMITS
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    out = os.dup(1)
    os.dup2(2, 1)  # a stray print cannot corrupt the replies
    system_catalog()
    gc.freeze()  # the imports are never garbage: keep the collector off them
    _write_all(out, frame(READY))
    buf = bytearray()
    while True:
        chunk = os.read(0, 1 << 20)  # blocks until the parent writes or closes
        if not chunk:
            return
        buf += chunk
        replies: list[bytes] = []
        flushed = time.monotonic()
        while True:
            for request in _frames(buf):
                replies.append(frame(_answer(request, limits)))
                if time.monotonic() - flushed > _BATCH_SECONDS:  # a slow one: answer what is done
                    _write_all(out, b"".join(replies))
                    replies.clear()
                    flushed = time.monotonic()
            if not select.select([0], [], [], 0)[0]:  # nothing more waiting: answer the batch
                break
            chunk = os.read(0, 1 << 20)
            if not chunk:
                _write_all(out, b"".join(replies))
                return
            buf += chunk
        _write_all(out, b"".join(replies))


if __name__ == "__main__":
    main()
