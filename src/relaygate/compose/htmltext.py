"""Plain text from an HTML body, for the text/plain alternative of templated mail.

Owns the choice of converter (html2text, the only importer of it) and its settings. The result
is meant for people reading the plain part, not for Markdown renderers:

* links become ``text (url)`` (nothing added when the text already is the URL; in-page
  ``#anchors`` and ``javascript:`` links keep only their text);
* no Markdown noise: no ``**``/``_`` emphasis, no ``#`` heading marks, no backslash escapes;
* images are replaced by their alt text; table rows become lines, cells separated by two
  spaces; ``<style>``, ``<head>``
  and comments are dropped;
* paragraphs are wrapped at 78 columns (URLs are never broken), runs of blank lines collapse
  to one, trailing spaces are removed.
"""

from __future__ import annotations

import re
from typing import Any

import html2text

__all__ = ["html_to_text"]

_WIDTH = 78
_BLANKS_RE = re.compile(r"\n{3,}")
_HEADING_TAGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
_TABLE_TAGS = frozenset({"table", "thead", "tbody", "tfoot", "caption", "colgroup", "col"})


class _Converter(html2text.HTML2Text):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__(bodywidth=_WIDTH)
        self.ignore_emphasis = True
        self.ignore_images = False
        self.images_to_alt = True
        self.default_image_alt = ""
        self.wrap_links = False
        self.wrap_list_items = True
        self.unicode_snob = True
        self.ul_item_mark = "-"
        self.tag_callback = _tag_callback  # type: ignore[assignment]
        self._hrefs: list[str | None] = []

    def handle_data(self, data: str, entity_char: bool = False) -> None:
        # entity_char=True is html2text's switch for "do not Markdown-escape this text".
        super().handle_data(data, entity_char=True)


def _tag_callback(conv: Any, tag: str, attrs: dict[str, str | None], start: bool) -> bool:
    if tag in _HEADING_TAGS:
        conv.p()
        return True
    if tag in _TABLE_TAGS:
        return True
    if tag == "tr":
        conv.pbr()
        return True
    if tag in ("td", "th"):
        if not start:
            conv.o("  ")
        return True
    if tag != "a":
        return False
    if start:
        href = (attrs.get("href") or "").strip()
        if not href or href.startswith("#") or href.lower().startswith("javascript:"):
            conv._hrefs.append(None)
        else:
            conv._hrefs.append(href)
        return True
    target: str | None = conv._hrefs.pop() if conv._hrefs else None
    if target is not None:
        shown = target[7:] if target.lower().startswith("mailto:") else target
        last = (conv.preceding_data or "").strip()
        if last not in (target, shown):
            conv.o(f" ({target})")
    return True


def html_to_text(html: str) -> str:
    """Readable plain text for ``html`` (see the module docstring for the style)."""
    conv = _Converter()
    text = conv.handle(html)
    lines = [line.rstrip() for line in text.splitlines()]
    text = "\n".join(lines).strip("\n")
    text = _BLANKS_RE.sub("\n\n", text)
    return text + "\n" if text else ""
