"""html_to_text: how HTML reads as plain text, on the catalog, on newsletter-shaped HTML, and on
anything at all (hypothesis: never raises, output and work linear in the input)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relaygate.compose.htmltext import html_to_text
from relaygate.compose.htmltree import MAX_DEPTH, parse
from relaygate.compose.templates import Template, render, system_catalog

DATA = Path(__file__).parent / "data"


def test_links_text_then_url() -> None:
    out = html_to_text('<p>Please <a href="https://x.test/v?a=1&amp;b=2">verify</a> now.</p>')
    assert out == "Please verify (https://x.test/v?a=1&b=2) now.\n"


def test_link_whose_text_is_the_url_is_not_repeated() -> None:
    assert html_to_text('<a href="https://x.test/">https://x.test/</a>') == "https://x.test/\n"
    assert html_to_text('<a href="https://www.x.test/">www.x.test</a>') == "www.x.test\n"
    assert html_to_text('<a href="mailto:h@x.test">h@x.test</a>') == "h@x.test\n"
    assert html_to_text('<a href="#top">Top</a>') == "Top\n"
    assert html_to_text('<a href="javascript:alert(1)">Go</a>') == "Go\n"
    assert html_to_text('<a href="https://x.test/p"><img src="p.png"></a>') == "https://x.test/p\n"
    assert html_to_text('<a href="https://x.test/p"><img alt="Logo"></a>') == (
        "Logo (https://x.test/p)\n"
    )
    assert html_to_text('<a href=" https://x.test/\n a ">x</a>') == "x (https://x.test/%20a)\n"


def test_a_link_around_blocks_gives_its_url_after_them() -> None:
    out = html_to_text('<a href="https://x.test/card"><div><h3>Title</h3><p>Teaser</p></div></a>')
    assert out == "Title\n\nTeaser\n\nhttps://x.test/card\n"


def test_no_markdown_noise() -> None:
    out = html_to_text("<h1>Title</h1><p><b>bold</b> <em>em</em> 1. not a list - nor * this</p>")
    assert "#" not in out and "**" not in out and "_em_" not in out and "\\" not in out
    assert out == "Title\n\nbold em 1. not a list - nor * this\n"


def test_paragraphs_headings_and_line_breaks() -> None:
    out = html_to_text("<h2>News</h2>text<p>one<br>two<br/><br>three</p><div>a</div><div>b</div>")
    assert out == "News\n\ntext\n\none\ntwo\n\nthree\n\na\nb\n"


def test_lists_nested_and_numbered() -> None:
    out = html_to_text(
        "<p>Steps:</p><ol start=3><li>first<li>second<ul><li>deep <b>one</b><li>deep two</ul>"
        "<li>third</ol><ul><li><p>loose</p></li></ul>"
    )
    assert out == (
        "Steps:\n\n3. first\n4. second\n   - deep one\n   - deep two\n5. third\n\n- loose\n"
    )


def test_list_items_wrap_under_their_text() -> None:
    out = html_to_text("<ul><li>" + "word " * 30 + "</li></ul>")
    lines = out.splitlines()
    assert lines[0].startswith("- word") and all(line.startswith("  word") for line in lines[1:])
    assert all(len(line) <= 78 for line in lines)


def test_blockquote_and_pre() -> None:
    out = html_to_text("<blockquote><p>quoted</p><p>again</p></blockquote><pre>a  b\n  c</pre>")
    assert out == "> quoted\n>\n> again\n\na  b\n  c\n"


def test_data_tables_are_aligned_rows() -> None:
    out = html_to_text(
        "<table><tr><td>Item</td><td>$5</td></tr><tr><td>Tax</td><td>$1</td></tr></table>"
    )
    assert out == "Item  $5\nTax   $1\n"


def test_a_data_table_too_wide_to_align_joins_cells() -> None:
    cell = "x" * 50
    out = html_to_text(f"<table><tr><td>{cell}</td><td>{cell}</td></tr><tr><td>a<td>b</table>")
    assert out == f"{cell}\n{cell}\na  b\n"  # the long row is wrapped at 78


def test_layout_tables_read_cell_by_cell() -> None:
    out = html_to_text(
        "<table role=presentation><tr><td><h2>Left</h2><p>one</p></td>"
        "<td><h2>Right</h2><p>two</p></td></tr></table>"
    )
    assert out == "Left\n\none\n\nRight\n\ntwo\n"


def test_misplaced_table_content_is_kept() -> None:
    assert html_to_text("<table>before<td>cell</td></table>") == "before\n\ncell\n"


def test_style_head_hidden_and_images() -> None:
    out = html_to_text(
        '<html><head><title>T</title><style>p{x:y}</style></head><body><div style="display:none">'
        'preheader</div><p hidden>gone</p><img alt="Logo" src="l.png"><p>Hi</p></body></html>'
    )
    assert "x:y" not in out and "T\n" not in out and "preheader" not in out and "gone" not in out
    assert out == "Logo\n\nHi\n"


def test_outlook_conditional_comments() -> None:
    out = html_to_text(
        "<!--[if mso]><p>for Outlook</p><![endif]--><!--[if !mso]><!--><p>for others</p>"
        "<!--<![endif]--><![if !mso]><p>downlevel</p><![endif]>"
    )
    assert out == "for others\n\ndownlevel\n"


def test_wraps_at_78_without_breaking_urls() -> None:
    url = "https://example.test/" + "a" * 120
    out = html_to_text("<p>" + "word " * 40 + f'<a href="{url}">link</a></p>')
    assert all(len(line) <= 78 for line in out.splitlines() if url not in line)
    assert url in out


def test_entities_and_invisible_padding() -> None:
    out = html_to_text("<p>caf&eacute; &lt;b&gt; &#x1F600; a&shy;b&zwnj;c &#847;&#8203;</p>")
    assert out == "café <b> 😀 ab\u200cc\n"


def test_empty() -> None:
    assert html_to_text("") == ""
    assert html_to_text("<p> </p>") == ""
    assert html_to_text("<p>&nbsp;</p><br><br>") == ""


def test_newsletter() -> None:
    """Layout tables inside Outlook conditionals, a hidden preheader, a two-column layout, a
    nested list, a VML button with its HTML twin, a data table and a footer."""
    out = html_to_text((DATA / "newsletter.html").read_text())
    assert out == (
        "Acme (https://acme.test/?utm_source=newsletter)\n"
        "View in browser (https://acme.test/view/42)\n"
        "\n"
        "Acme Weekly #42\n"
        "\n"
        "Hello Alex,\n"
        "here is what happened this week at Acme & friends.\n"
        "\n"
        "Spring sale\n"
        "\n"
        "Everything is 20 % off until Sunday. Stock up on widgets, gadgets and the\n"
        "occasional gizmo before they are gone.\n"
        "\n"
        "Shop the sale (https://acme.test/sale)\n"
        "\n"
        "New in the docs\n"
        "\n"
        "- Getting started\n"
        "  1. Install the acme CLI\n"
        "  2. Run acme init (https://docs.acme.test/init)\n"
        "- Webhooks, explained\n"
        "\n"
        "Open the app (https://acme.test/app)\n"
        "\n"
        "Plan     Monthly  Yearly\n"
        "Starter  $9       $90\n"
        "Team     $29      $290\n"
        "\n"
        "You get this because you signed up at acme.test.\n"
        "\n"
        "Acme Inc.\n"
        "1 Main Street\n"
        "Springfield\n"
        "\n"
        "Unsubscribe (https://acme.test/unsubscribe?u=abc&l=42) | help@acme.test\n"
    )


CATALOG_SAMPLES: dict[str, dict[str, Any]] = {
    "welcome": {"user": {"first_name": "Alex"}, "action_url": "https://app.test/start"},
    "verify-email": {"action_url": "https://app.test/verify?t=abc", "code": "123456"},
    "password-reset": {"action_url": "https://app.test/reset?t=abc", "user": {"email": "a@x.io"}},
    "receipt": {
        "product_name": "Acme",
        "receipt_number": "1042",
        "items": [
            {"name": "Pro plan", "amount": "49.00"},
            {"name": "Seats", "quantity": 3, "amount": "30.00"},
        ],
        "total": "79.00",
        "support_email": "help@acme.test",
        "action_url": "https://acme.test/o/1",
    },
    "notification": {"message": "Your export is ready.", "details": {"File": "export.csv"}},
}


def _derived(slug: str) -> str:
    t = system_catalog()[slug]
    return render(
        Template(slug=slug, subject=t.subject, html=t.html, text=""), CATALOG_SAMPLES[slug]
    ).text


def test_catalog_receipt_as_text() -> None:
    assert _derived("receipt") == (
        "Acme\n\nThanks for your purchase!\n\nHere is your receipt #1042.\n\n"
        "Item       Amount\nPro plan   $49.00\nSeats × 3  $30.00\nTotal      $79.00\n\n"
        "View your order (https://acme.test/o/1)\n\nKeep this email for your records.\n\n"
        "Questions? Write to help@acme.test.\n"
    )


@pytest.mark.parametrize("slug", sorted(CATALOG_SAMPLES))
def test_catalog_templates_read_well(slug: str) -> None:
    text = _derived(slug)
    lines = text.splitlines()
    assert lines and all(len(line) <= 78 and line == line.rstrip() for line in lines)
    assert "\n\n\n" not in text and "<" not in text and "{" not in text
    assert "display" not in text and "mso" not in text  # no preheader, no style
    for url in ("https://app.test/", "https://acme.test/o/1"):
        if url in str(CATALOG_SAMPLES[slug]):
            assert url in text


# -- any input ----------------------------------------------------------------------------------

PIECES = [
    "<p>",
    "</p>",
    "<div>",
    "</div>",
    "<br>",
    '<a href="https://x.test/">',
    "<a href='",
    "</a>",
    "<ul>",
    "<ol start=9>",
    "<li>",
    "</ul>",
    "</ol>",
    "<table>",
    "<tr>",
    "<td>",
    "<th>",
    "</td>",
    "</tr>",
    "</table>",
    "<tbody>",
    "<blockquote>",
    "</blockquote>",
    "<pre>",
    "</pre>",
    "<h1>",
    "</h1>",
    '<img alt="A">',
    "<hr>",
    "<!--",
    "-->",
    "<!--[if mso]>",
    "<![endif]-->",
    "<![if !mso]>",
    "<![endif]>",
    "<!DOCTYPE html>",
    "<?xml?>",
    "<script>",
    "</script>",
    "<style>",
    "<head>",
    "<body>",
    '<span style="display:none">',
    "</span>",
    "&amp;",
    "&#x",
    "&#0;",
    "&",
    "<",
    ">",
    '"',
    "'",
    "=",
    "/",
    " ",
    "\n",
    "\x00",
    "\ud800",
    "word",
    "é",
    "</",
    "<a",
    "<dd>",
    "<dt>",
    "<dl>",
    "<caption>",
    "<textarea>",
]
html_like = st.lists(st.sampled_from(PIECES) | st.text(max_size=5), max_size=60).map("".join)


def _check_shape(out: str) -> None:
    assert isinstance(out, str)
    assert out == "" or (out.endswith("\n") and not out.startswith("\n"))
    assert "\n\n\n" not in out
    assert all(line == line.rstrip() for line in out.splitlines())


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=300) | html_like)
def test_any_input_gives_text(source: str) -> None:
    out = html_to_text(source)
    _check_shape(out)
    assert len(out) <= 32 * len(source) + 1


def _work(func: Callable[[str], object], arg: str) -> int:
    """How many Python and C function calls ``func(arg)`` makes (a measure of work that does not
    depend on the machine's speed)."""
    count = 0

    def profile(frame: FrameType, event: str, _arg: object) -> None:
        nonlocal count
        if event in ("call", "c_call"):
            count += 1

    sys.setprofile(profile)
    try:
        func(arg)
    finally:
        sys.setprofile(None)
    return count


@settings(max_examples=60, deadline=None)
@given(html_like)
def test_work_is_linear_in_the_input(source: str) -> None:
    assert _work(html_to_text, source) <= 60 * len(source) + 400


#: Inputs on which html.parser (Python 3.11.7) is quadratic or worse, and other extremes.
HOSTILE = {
    "unterminated tags": "<a",
    "unterminated attribute quotes": '<a b="',
    "end tags": "</",
    "declarations": "<!",
    "instructions": "<?",
    "comment opens": "<!--",
    "nesting": "<div><ul><li>",
    "table cells": "<table><tr><td>",
    "links in links": '<a href="https://x.test/">x',
    "lone brackets": "<<>>",
}


@pytest.mark.parametrize("unit", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_input_costs_linear_work(unit: str) -> None:
    small = _work(html_to_text, unit * 500)
    large = _work(html_to_text, unit * 4_000)
    assert large <= 9 * small + 1_000


def test_deep_nesting_is_flattened_not_recursed() -> None:
    depth = 20_000
    tree = parse("<div>" * depth + "deep" + "</div>" * depth)
    levels = 0
    node = tree
    while node.children and not isinstance(node.children[0], str):
        node = node.children[0]
        levels += 1
    assert levels == MAX_DEPTH and node.children == ["deep"]
    assert html_to_text("<ul><li>" * depth + "x").strip().endswith("- x")


@pytest.mark.parametrize(
    "char", ["\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]
)
def test_other_line_breaks_are_newlines(char: str) -> None:
    # str.splitlines() ends a line at these: left in the text, a reader would see a line ending
    # in a space (found by the fuzz test: '<LI><PRE>\x1e0' gave '- \x1e0').
    out = html_to_text(f"<li><pre>{char}0</pre></li><p>a {char} b</p>")
    _check_shape(out)
    assert char not in out
    assert out.splitlines() == ["- 0", "", "a b"]
