from __future__ import annotations

from relaygate.compose.htmltext import html_to_text


def test_links_text_then_url() -> None:
    out = html_to_text('<p>Please <a href="https://x.test/v?a=1&amp;b=2">verify</a> now.</p>')
    assert out == "Please verify (https://x.test/v?a=1&b=2) now.\n"


def test_link_whose_text_is_the_url_is_not_repeated() -> None:
    assert html_to_text('<a href="https://x.test/">https://x.test/</a>') == "https://x.test/\n"
    assert html_to_text('<a href="mailto:h@x.test">h@x.test</a>') == "h@x.test\n"
    assert html_to_text('<a href="#top">Top</a>') == "Top\n"


def test_no_markdown_noise() -> None:
    out = html_to_text("<h1>Title</h1><p><b>bold</b> <em>em</em> 1. not a list - nor * this</p>")
    assert "#" not in out and "**" not in out and "_em_" not in out and "\\" not in out
    assert out == "Title\n\nbold em 1. not a list - nor * this\n"


def test_tables_rows_and_cells() -> None:
    out = html_to_text(
        "<table><tr><td>Item</td><td>$5</td></tr><tr><td>Tax</td><td>$1</td></tr></table>"
    )
    assert out == "Item  $5\nTax  $1\n"


def test_style_head_and_images() -> None:
    out = html_to_text(
        '<html><head><title>T</title><style>p{x:y}</style></head><body><img alt="Logo" src="l.png"><p>Hi</p></body></html>'
    )
    assert "x:y" not in out and "T\n" not in out
    assert out == "Logo\n\nHi\n"


def test_wraps_at_78_without_breaking_urls() -> None:
    url = "https://example.test/" + "a" * 120
    out = html_to_text("<p>" + "word " * 40 + f'<a href="{url}">link</a></p>')
    assert all(len(line) <= 78 for line in out.splitlines() if url not in line)
    assert url in out


def test_empty() -> None:
    assert html_to_text("") == ""
    assert html_to_text("<p> </p>") == ""
