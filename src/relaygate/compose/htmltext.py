"""Plain text from an HTML body, for the text/plain alternative of templated mail.

Owns how HTML reads as text (the tree comes from :mod:`relaygate.compose.htmltree`). The result is
meant for people reading the plain part, not for Markdown renderers:

* links become ``text (url)`` (nothing added when the text already is the URL, or the address
  of a ``mailto:``; in-page ``#anchors`` and ``javascript:`` links keep only their text; a link
  with no text shows its URL);
* no Markdown noise: no emphasis marks, no ``#`` before headings, no backslash escapes;
* headings and paragraphs are separated by a blank line; ``<br>`` breaks a line;
* lists: ``- item`` or ``1. item``, nested lists indented under their item;
* ``<blockquote>`` lines start with ``> ``; ``<pre>`` keeps its lines as they are;
* tables: a table whose cells hold only inline content is data — one line per row, columns
  aligned when they fit in 78 columns (else cells separated by two spaces); a table with blocks
  in its cells is layout — each cell reads as its own block, in document order;
* images are replaced by their alt text; ``head``, ``style``, ``script``, comments (Outlook's
  conditional ones included) and elements hidden with ``display:none`` or ``hidden`` (a
  newsletter's preheader) are dropped;
* paragraphs are wrapped at 78 columns (words and URLs are never broken), runs of blank lines
  collapse to one, trailing spaces are removed.

Cost: linear in the input (the tree is built in linear time and bounded depth, and walked once);
the output is at most a constant factor longer than the input.
"""

from __future__ import annotations

import re

from relaygate.compose.htmltree import Element, parse

__all__ = ["html_to_text"]

_WIDTH = 78
_MIN_WIDTH = 30
#: Nesting beyond this many lists or quotes adds no further indentation.
_MAX_INDENT_LEVELS = 6
_SKIP = frozenset(
    {
        "head",
        "script",
        "style",
        "title",
        "template",
        "xml",
        "svg",
        "iframe",
        "noembed",
        "noframes",
        "object",
        "select",
        "datalist",
        "audio",
        "video",
        "canvas",
        "input",
    }
)
_TABLE_STRUCTURE = frozenset({"tr", "thead", "tbody", "tfoot", "col", "colgroup"})
_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
_PARAGRAPHS = _HEADINGS | {"p", "table", "pre", "dl", "figure", "hr"}
_LINES = frozenset(
    {
        "address",
        "article",
        "aside",
        "caption",
        "center",
        "details",
        "div",
        "dt",
        "fieldset",
        "figcaption",
        "footer",
        "form",
        "header",
        "legend",
        "main",
        "nav",
        "section",
        "summary",
        "tbody",
        "tfoot",
        "thead",
        "tr",
        "td",
        "th",
    }
)
_HIDDEN_STYLE_RE = re.compile(r"(?:^|;)\s*display\s*:\s*none\b", re.IGNORECASE)
_URL_JUNK_RE = re.compile(r"[\t\n\r]")
_SAME_URL_RE = re.compile(r"^(?:mailto:|tel:|https?://)?(?:www\.)?", re.IGNORECASE)
#: Stands for a <br> in a paragraph (the tree never holds NUL: it becomes U+FFFD).
_BREAK = "\x00"
#: Characters str.splitlines() ends a line at besides \n and \r (vertical tab, form feed, the
#: file/group/record separators, NEL, the Unicode line and paragraph separators): read as newlines,
#: so every line of the text is a line for any reader of it.
_OTHER_LINE_BREAKS_RE = re.compile("[\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
#: Characters that carry nothing in plain text (soft hyphen, invisible padding of preheaders).
_INVISIBLE = str.maketrans("", "", "\u00ad\u034f\u200b\ufeff")


class _Writer:
    """Collects inline text into paragraphs and paragraphs into wrapped, prefixed lines."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, bool]] = []  # (line, is a blank separator)
        self.para: list[str] = []
        self.blank = False  # a blank line is due before the next content
        self.prefixes: list[str] = []  # continuation prefix per open list item / quote
        self.marker = ""  # the list marker the next line starts with
        self.pre = 0  # inside <pre>
        self.flushes = 0

    @property
    def prefix(self) -> str:
        return "".join(self.prefixes[-_MAX_INDENT_LEVELS:])

    def block(self, blank: bool) -> None:
        self.flush()
        self.blank = self.blank or blank

    def flush(self) -> None:
        if not self.para:
            return
        text = "".join(self.para)
        self.para = []
        self.flushes += 1
        if self.pre:
            rows = [r.rstrip() for r in text.removeprefix("\n").split("\n")]
        else:
            rows = [" ".join(row.split()) for row in text.split(_BREAK)]
        while rows and not rows[-1]:
            rows.pop()
        while rows and not rows[0]:
            rows.pop(0)
        if rows:
            self._emit(rows, wrap=not self.pre)

    def rows(self, rows: list[str]) -> None:
        """Lines of their own (table rows), each wrapped if too long."""
        self.flush()
        if rows:
            self._emit(rows, wrap=True)

    def _emit(self, rows: list[str], *, wrap: bool) -> None:
        prefix = self.prefix
        if self.blank and self.lines:
            self.lines.append((prefix.rstrip(), True))
        self.blank = False
        first = ""
        if self.marker and self.prefixes:
            first = prefix[: len(prefix) - len(self.prefixes[-1])] + self.marker
        self.marker = ""
        width = max(_MIN_WIDTH, _WIDTH - len(prefix))
        for row in rows:
            for piece in _wrap(row, width) if wrap else [row]:
                self.lines.append((((first or prefix) + piece).rstrip(), False))
                first = ""

    def text(self) -> str:
        self.flush()
        out: list[str] = []
        last_blank = True  # no blank line at the start
        for line, blank in self.lines:
            blank = blank or not line
            if blank and last_blank:
                continue
            out.append(line)
            last_blank = blank
        if out and last_blank:
            out.pop()
        return "\n".join(out) + "\n" if out else ""


def _wrap(row: str, width: int) -> list[str]:
    if len(row) <= width:
        return [row]
    out: list[str] = []
    current: list[str] = []
    size = 0
    for word in row.split(" "):
        if current and size + 1 + len(word) > width:
            out.append(" ".join(current))
            current, size = [], 0
        size += len(word) + (1 if current else 0)
        current.append(word)
    if current:
        out.append(" ".join(current))
    return out


def _hidden(el: Element) -> bool:
    if el.tag in _SKIP or "hidden" in el.attrs:
        return True
    style = el.attrs.get("style")
    return bool(style and _HIDDEN_STYLE_RE.search(style))


def _link_target(href: str | None) -> str | None:
    if href is None:
        return None
    url = _URL_JUNK_RE.sub("", href).strip().replace(" ", "%20")  # as a browser sends it
    if not url or url.startswith("#") or url.lower().startswith("javascript:"):
        return None
    return url


class _Renderer:
    def __init__(self) -> None:
        self.w = _Writer()
        self.in_link = False
        self.lists = 0

    def children(self, el: Element) -> None:
        for child in el.children:
            if isinstance(child, str):
                self.w.para.append(child if self.w.pre else child.translate(_INVISIBLE))
            else:
                self.element(child)

    def element(self, el: Element) -> None:
        if _hidden(el):
            return
        tag = el.tag
        w = self.w
        if tag == "br":
            w.para.append("\n" if w.pre else _BREAK)
        elif tag == "img":
            alt = " ".join(el.attrs.get("alt", "").split())
            if alt:
                w.para.append(alt)
        elif tag == "a":
            self.link(el)
        elif tag in ("ul", "ol"):
            self.listing(el)
        elif tag == "li":  # outside a list: an unnumbered item
            self.item(el, "- ")
        elif tag == "table":
            self.table(el)
        elif tag == "blockquote":
            self.quoted(el)
        elif tag == "hr":
            w.block(True)
            w.rows(["-" * 24])
            w.block(True)
        elif tag == "pre":
            w.block(True)
            w.pre += 1
            self.children(el)
            w.flush()
            w.pre -= 1
            w.block(True)
        elif tag == "dd":
            w.block(False)
            w.prefixes.append("  ")
            self.children(el)
            w.block(False)
            w.prefixes.pop()
        elif tag in _PARAGRAPHS:
            w.block(True)
            self.children(el)
            w.block(True)
        elif tag in _LINES:
            w.block(False)
            self.children(el)
            w.block(False)
        else:
            self.children(el)

    def link(self, el: Element) -> None:
        url = None if self.in_link else _link_target(el.attrs.get("href"))
        if url is None:
            self.children(el)
            return
        w = self.w
        start, flushes = len(w.para), w.flushes
        self.in_link = True
        self.children(el)
        self.in_link = False
        if w.flushes != flushes:  # the link held blocks: its URL follows them
            w.para.append(f" ({url})" if "".join(w.para).strip() else url)
            return
        shown = " ".join("".join(w.para[start:]).replace(_BREAK, " ").split())
        if not shown:
            w.para.append(url)
        elif not _same(shown, url):
            w.para.append(f" ({url})")

    def listing(self, el: Element) -> None:
        w = self.w
        top = self.lists == 0
        w.block(top)
        self.lists += 1
        number = _start(el.attrs.get("start")) if el.tag == "ol" else 0
        for child in el.children:
            if isinstance(child, Element) and child.tag == "li" and not _hidden(child):
                self.item(child, f"{number}. " if el.tag == "ol" else "- ")
                number += 1
            elif isinstance(child, Element):
                self.element(child)
            else:
                w.para.append(child)
        self.lists -= 1
        w.block(top)

    def item(self, el: Element, marker: str) -> None:
        w = self.w
        w.block(False)
        w.marker = marker
        w.prefixes.append(" " * len(marker))
        self.children(el)
        w.flush()
        w.marker = ""
        w.prefixes.pop()

    def quoted(self, el: Element) -> None:
        w = self.w
        w.block(True)
        w.prefixes.append("> ")
        self.children(el)
        w.block(True)
        w.flush()
        w.prefixes.pop()

    def table(self, el: Element) -> None:
        w = self.w
        w.block(True)
        rows, strays = _rows(el)
        for stray in strays:  # content misplaced in the table reads before it (HTML)
            if isinstance(stray, str):
                w.para.append(stray)
            else:
                self.element(stray)
        w.block(True)
        if any(cell.has_block for cells in rows for cell in cells):
            for cells in rows:
                for cell in cells:
                    w.block(False)
                    self.children(cell)
                    w.block(False)
        else:
            texts = [[self.inline(cell) for cell in cells] for cells in rows]
            w.rows(_table_lines(texts, max(_MIN_WIDTH, _WIDTH - len(w.prefix))))
        w.block(True)

    def inline(self, cell: Element) -> str:
        """The text of a cell with inline content only, on one line."""
        w = self.w
        start = len(w.para)
        self.children(cell)
        text = " ".join("".join(w.para[start:]).split())
        del w.para[start:]
        return text


def _start(value: str | None) -> int:
    try:
        return max(0, min(int((value or "1").strip()), 999_999))
    except ValueError:
        return 1


def _rows(table: Element) -> tuple[list[list[Element]], list[Element | str]]:
    """The table's own rows (not those of nested tables), each as its visible cells; and what
    else the table holds (a caption, misplaced text or elements), in document order."""
    rows: list[list[Element]] = []
    strays: list[Element | str] = []

    def walk(group: Element) -> None:
        for child in group.children:
            if isinstance(child, str) or child.tag not in _TABLE_STRUCTURE:
                strays.append(child)
            elif _hidden(child) or child.tag in ("col", "colgroup"):
                continue
            elif child.tag == "tr":
                rows.append(
                    [
                        c
                        for c in child.children
                        if isinstance(c, Element) and c.tag in ("td", "th") and not _hidden(c)
                    ]
                )
            else:  # thead, tbody, tfoot
                walk(child)

    walk(table)
    return rows, strays


def _same(shown: str, url: str) -> bool:
    """Whether a link's text already says its URL (``example.com`` for ``https://example.com/``)."""
    return _SAME_URL_RE.sub("", shown).rstrip("/").lower() == (
        _SAME_URL_RE.sub("", url).rstrip("/").lower()
    )


def _table_lines(rows: list[list[str]], width: int) -> list[str]:
    rows = [r[: max((i + 1 for i, c in enumerate(r) if c), default=0)] for r in rows]
    rows = [r for r in rows if r]
    if not rows:
        return []
    columns = max(len(r) for r in rows)
    widths = [max((len(r[i]) for r in rows if i < len(r)), default=0) for i in range(columns)]
    aligned = columns > 1 and sum(widths) + 2 * (columns - 1) <= width
    lines = []
    for r in rows:
        if aligned:
            cells = [c.ljust(widths[i]) if i < len(r) - 1 else c for i, c in enumerate(r)]
            lines.append("  ".join(cells).rstrip())
        else:
            lines.append("  ".join(c for c in r if c))
    return lines


def html_to_text(html: str) -> str:
    """Readable plain text for ``html`` (see the module docstring for the style)."""
    if _OTHER_LINE_BREAKS_RE.search(html):
        html = _OTHER_LINE_BREAKS_RE.sub("\n", html)
    renderer = _Renderer()
    renderer.children(parse(html))
    return renderer.w.text()
