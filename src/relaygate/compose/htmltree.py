"""HTML → a small element tree, in time linear in the input, whatever the input.

Owns the tokenizer and the tree builder behind :mod:`relaygate.compose.htmltext`. Trusts
nothing: the HTML comes from templates an account wrote and from the variables its requests
fill in, up to the render limit (1,000,000 characters).

Why not ``html.parser``: on Python 3.11.7 its end-of-input recovery (``close()``, which a
converter needs to read unterminated markup at all) is quadratic or worse: ``'<a b="' * 10_000``
(60 KB) takes 19 s and ``'<a' * 40_000`` 11 s on this project's CI host, because each
unterminated tag is re-scanned to the end of the input. Here every character is
looked at a bounded number of times: a tag, comment or raw-text element that never ends takes
the rest of the input with it (as a browser does), and is never scanned again.

What the tree keeps, following the HTML standard where it matters for text and simplifying
elsewhere:

* Tags and attribute names are lower-cased; character references are decoded
  (``html.unescape``); NUL becomes U+FFFD.
* Comments, ``<!…>``, ``<?…>`` and ``<![…]>`` are dropped — so Outlook's conditional comments
  (``<!--[if mso]>…<![endif]-->``) vanish and their "not mso" halves stay.
* ``script``, ``style``, ``title``, ``textarea``, ``xmp``, ``iframe``, ``noembed`` and
  ``noframes`` hold raw text up to their end tag.
* Void elements (``br``, ``img`` …) have no children; the usual implied end tags close ``p``,
  ``li``, ``dt``/``dd``, table rows and cells, ``a`` and headings; an end tag with no open
  element is ignored.
* Nesting deeper than ``MAX_DEPTH`` elements is flattened into the deepest one (its text is
  kept), so walking the tree never recurses without bound.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field

__all__ = ["BLOCK_TAGS", "MAX_DEPTH", "Element", "parse"]

#: Elements deeper than this are not nested further (their content joins the deepest element).
MAX_DEPTH = 64

VOID_TAGS = frozenset(
    {
        "area",
        "base",
        "br",
        "col",
        "embed",
        "hr",
        "img",
        "input",
        "keygen",
        "link",
        "meta",
        "param",
        "source",
        "track",
        "wbr",
    }
)
_RAW_TEXT_TAGS = frozenset(
    {"script", "style", "title", "textarea", "xmp", "iframe", "noembed", "noframes"}
)
_ESCAPABLE_RAW_TEXT = frozenset({"title", "textarea"})
#: Elements that start a new line (or more) of text; everything else flows inline.
BLOCK_TAGS = frozenset(
    {
        "address",
        "article",
        "aside",
        "blockquote",
        "br",
        "caption",
        "center",
        "dd",
        "details",
        "div",
        "dl",
        "dt",
        "fieldset",
        "figcaption",
        "figure",
        "footer",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "legend",
        "li",
        "main",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "summary",
        "table",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "tr",
        "ul",
    }
)
_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
#: Start tags that close an open ``p`` (HTML: "close a p element in button scope").
_CLOSES_P = frozenset(
    {
        "address",
        "article",
        "aside",
        "blockquote",
        "center",
        "details",
        "div",
        "dl",
        "fieldset",
        "figcaption",
        "figure",
        "footer",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "main",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "summary",
        "table",
        "ul",
    }
)
#: What may stand in ``head``; any other start tag ends it (as ``<body>`` would).
_HEAD_CONTENT = frozenset(
    {"base", "link", "meta", "noscript", "script", "style", "template", "title", "head"}
)
#: Where the search for an element to close implicitly stops.
_SCOPE = frozenset({"table", "td", "th", "caption", "html", "body", "button", "template"})
#: start tag → (tags it closes, tags that bound the search).
_IMPLIED: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "li": (frozenset({"li"}), _SCOPE | {"ul", "ol"}),
    "dt": (frozenset({"dt", "dd"}), _SCOPE | {"dl"}),
    "dd": (frozenset({"dt", "dd"}), _SCOPE | {"dl"}),
    "tr": (frozenset({"tr"}), frozenset({"table", "thead", "tbody", "tfoot"})),
    "td": (frozenset({"td", "th"}), frozenset({"table", "tr"})),
    "th": (frozenset({"td", "th"}), frozenset({"table", "tr"})),
    "thead": (frozenset({"thead", "tbody", "tfoot"}), frozenset({"table"})),
    "tbody": (frozenset({"thead", "tbody", "tfoot"}), frozenset({"table"})),
    "tfoot": (frozenset({"thead", "tbody", "tfoot"}), frozenset({"table"})),
    "a": (frozenset({"a"}), _SCOPE),
    **{h: (_HEADINGS, _SCOPE) for h in _HEADINGS},
}

_P = frozenset({"p"})
_CELLS = frozenset({"td", "th"})
_TABLE_PARTS = frozenset({"table", "thead", "tbody", "tfoot"})
_ROW_BOUNDS = frozenset({"tr"})
_HEAD = frozenset({"head"})
_TAG_NAME_RE = re.compile(r"[a-zA-Z][^\t\n\f\r />]*+")
_ATTR_RE = re.compile(
    r"[\t\n\f\r /]*+([^\t\n\f\r />][^\t\n\f\r />=]*+)"
    r"(?:[\t\n\f\r ]*+=[\t\n\f\r ]*+(\"[^\"]*+\"|'[^']*+'|[^\t\n\f\r >]*+))?"
)
_TAG_END_RE = re.compile(r"[\t\n\f\r /]*+>")
_RAW_END_RE = {
    name: re.compile(rf"</{name}(?=[\t\n\f\r />])", re.IGNORECASE) for name in _RAW_TEXT_TAGS
}


@dataclass(kw_only=True, slots=True, eq=False)
class Element:
    """One element: its tag, attributes and children (text is ``str``).

    ``has_block``: some descendant is a block element (set when the element is closed).
    """

    tag: str
    attrs: dict[str, str] = field(default_factory=dict)
    children: list[Element | str] = field(default_factory=list)
    has_block: bool = False


def _text(raw: str) -> str:
    return html.unescape(raw).replace("\x00", "\ufffd") if raw else ""


class _Builder:
    def __init__(self) -> None:
        self.root = Element(tag="#root")
        self.stack: list[Element] = [self.root]
        self.open: dict[str, int] = {}  # open elements by tag: most searches end before they start

    def text(self, data: str) -> None:
        if data:
            self.stack[-1].children.append(data)

    def _pop(self) -> None:
        child = self.stack.pop()
        self.open[child.tag] -= 1
        parent = self.stack[-1]
        parent.has_block = parent.has_block or child.has_block or child.tag in BLOCK_TAGS

    def _close_to(self, index: int) -> None:
        while len(self.stack) > index:
            self._pop()

    def _find(self, names: frozenset[str], bounds: frozenset[str]) -> int:
        """Index in the stack of the innermost element named in ``names``, or 0."""
        if not any(self.open.get(name) for name in names):
            return 0
        for i in range(len(self.stack) - 1, 0, -1):
            tag = self.stack[i].tag
            if tag in names:
                return i
            if tag in bounds:
                return 0
        return 0

    def start(self, tag: str, attrs: dict[str, str]) -> None:
        if tag not in _HEAD_CONTENT and (i := self._find(_HEAD, frozenset())):
            self._close_to(i)
        if tag in _CLOSES_P and (i := self._find(_P, _SCOPE)):
            self._close_to(i)
        implied = _IMPLIED.get(tag)
        if implied is not None and (i := self._find(*implied)):
            self._close_to(i)
        if tag in _CELLS and self._find(_TABLE_PARTS, _ROW_BOUNDS):  # a cell needs a row
            self.start("tr", {})
        element = Element(tag=tag, attrs=attrs)
        if tag in VOID_TAGS:
            parent = self.stack[-1]
            parent.children.append(element)
            parent.has_block = parent.has_block or tag in BLOCK_TAGS
            return
        if len(self.stack) > MAX_DEPTH:
            return
        self.stack[-1].children.append(element)
        self.stack.append(element)
        self.open[tag] = self.open.get(tag, 0) + 1

    def end(self, tag: str) -> None:
        if tag == "br":  # </br> is a <br> (HTML)
            self.start("br", {})
            return
        if not self.open.get(tag):
            return
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                self._close_to(i)
                return

    def finish(self) -> Element:
        self._close_to(1)
        return self.root


def _attrs(source: str, pos: int) -> tuple[dict[str, str], int]:
    """Attributes from ``pos`` up to the tag's ``>``: (attrs, index after ``>``), or -1 at EOF."""
    attrs: dict[str, str] = {}
    while True:
        end = _TAG_END_RE.match(source, pos)
        if end is not None:
            return attrs, end.end()
        found = _ATTR_RE.match(source, pos)
        if found is None or found.end() == pos:
            return attrs, -1  # only at the end of the input
        name, value = found.group(1).lower(), found.group(2)
        if value and value[0] in "\"'":
            if len(value) < 2 or value[-1] != value[0]:
                return attrs, -1
            value = value[1:-1]
        if name not in attrs:  # the first of duplicated attributes wins (HTML)
            attrs[name] = _text(value or "")
        pos = found.end()


def parse(source: str) -> Element:
    """The element tree of ``source`` (never raises on any ``str``)."""
    b = _Builder()
    n = len(source)
    pos = 0
    while pos < n:
        lt = source.find("<", pos)
        if lt < 0:
            b.text(_text(source[pos:]))
            break
        if lt > pos:
            b.text(_text(source[pos:lt]))
        nxt = source[lt + 1 : lt + 2]
        if nxt == "!":
            if source.startswith("<!--", lt):
                if source.startswith(">", lt + 4) or source.startswith("->", lt + 4):
                    pos = source.find(">", lt + 4) + 1
                    continue
                close = source.find("-->", lt + 4)
                pos = n if close < 0 else close + 3
                continue
            close = source.find(">", lt + 2)
            pos = n if close < 0 else close + 1
            continue
        if nxt == "?":
            close = source.find(">", lt + 2)
            pos = n if close < 0 else close + 1
            continue
        if nxt == "/":
            name = _TAG_NAME_RE.match(source, lt + 2)
            close = source.find(">", lt + 2)
            if close < 0:
                break  # EOF in an end tag: the rest is dropped
            if name is not None:
                b.end(name.group().lower())
            pos = close + 1
            continue
        name = _TAG_NAME_RE.match(source, lt + 1)
        if name is None:  # a lone "<": text
            b.text("<")
            pos = lt + 1
            continue
        tag = name.group().lower()
        attrs, after = _attrs(source, name.end())
        if after < 0:
            break  # EOF in a tag: the rest is dropped
        b.start(tag, attrs)
        pos = after
        if tag in _RAW_TEXT_TAGS:
            close_match = _RAW_END_RE[tag].search(source, pos)
            stop = n if close_match is None else close_match.start()
            raw = source[pos:stop]
            b.text(_text(raw) if tag in _ESCAPABLE_RAW_TEXT else raw.replace("\x00", "\ufffd"))
            pos = stop
    return b.finish()
