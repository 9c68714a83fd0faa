"""rewrite_html on real-world-ish emails: only hrefs and the pixel change, byte for byte."""

from __future__ import annotations

import base64
import html
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relaygate.events.tracking import (
    click_url,
    open_url,
    pixel_tag,
    read_token,
    rewrite_html,
    track_html,
)

FIXTURES = Path(__file__).parent / "fixtures"
TRACKER = "https://trk.example/t/c/"
PIXEL_URL = "https://trk.example/t/o/PIXEL"
PIXEL = pixel_tag(PIXEL_URL)
_TRACKED = re.compile(re.escape(TRACKER) + r"([A-Za-z0-9_-]*)")


def fake_click(url: str) -> str:
    return TRACKER + base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")


def unfake(tracked: str) -> str:
    token = tracked[len(TRACKER) :]
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()


class Recorder(HTMLParser):
    """The sequence a browser-ish consumer sees: tags, attributes, text, comments."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.events: list[tuple[object, ...]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.events.append(("start", tag, tuple(attrs)))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        # Browsers ignore the self-closing flag on HTML elements.
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        self.events.append(("end", tag))

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self.events and self.events[-1][0] == "data":
            self.events[-1] = ("data", str(self.events[-1][1]) + data)
        else:
            self.events.append(("data", data))

    def handle_comment(self, data: str) -> None:
        self.events.append(("comment", data))

    def handle_decl(self, decl: str) -> None:
        self.events.append(("decl", decl))

    def handle_pi(self, data: str) -> None:
        self.events.append(("pi", data))

    def unknown_decl(self, data: str) -> None:
        self.events.append(("unknown", data))


def parse(doc: str) -> Recorder:
    r = Recorder()
    try:
        r.feed(doc)
        r.close()
    except AssertionError:  # html.parser gives up on some malformed <![ ... sections
        pass
    return r


def untracked_events(doc: str) -> list[tuple[object, ...]]:
    """Events of ``doc`` with the pixel removed and tracked hrefs mapped back to originals."""
    out: list[tuple[object, ...]] = []
    for ev in parse(doc).events:
        if ev[0] == "start" and ev[1] == "img" and ("src", PIXEL_URL) in ev[2]:  # type: ignore[operator]
            continue
        if ev[0] == "start":
            attrs = tuple(
                (k, unfake(v)) if k == "href" and v and v.startswith(TRACKER) else (k, v)
                for k, v in ev[2]  # type: ignore[attr-defined]
            )
            ev = ("start", ev[1], attrs)
        if out and ev[0] == "data" and out[-1][0] == "data":
            out[-1] = ("data", str(out[-1][1]) + str(ev[1]))
            continue
        out.append(ev)
    return out


def rewritten_urls(doc: str) -> list[str]:
    return [unfake(m.group(0)) for m in _TRACKED.finditer(html.unescape(doc))]


def assert_only_hrefs_and_pixel_changed(original: str, output: str) -> None:
    # 1. Byte for byte: outside the tracked href values and the pixel nothing moved.
    assert output.count(PIXEL) == 1
    body = output.replace(PIXEL, "", 1)
    parts = _TRACKED.split(body)  # text, token, text, token, ...
    texts = parts[0::2]
    pattern = "(.*?)".join(re.escape(t) for t in texts)
    m = re.fullmatch(pattern, original, flags=re.DOTALL)
    assert m is not None, "something other than href values changed"
    for raw_value, tracked_token in zip(m.groups(), parts[1::2], strict=True):
        url = unfake(TRACKER + tracked_token)
        decoded = html.unescape(raw_value)
        assert url == decoded.strip(" \t\n\r\f").replace("\n", "").replace("\t", "")
    # 2. Parsed: the same tags, attributes, text and comments once hrefs are mapped back.
    expected = parse(original).events
    got = untracked_events(output)
    # whitespace-only differences in hrefs are stripped by the rewriter (as browsers do)
    assert [_strip_href(e) for e in got] == [_strip_href(e) for e in expected]


def _strip_href(ev: tuple[object, ...]) -> tuple[object, ...]:
    if ev[0] != "start":
        return ev
    return (
        "start",
        ev[1],
        tuple(
            (k, v.strip(" \t\n\r\f").replace("\n", "")) if k == "href" and v else (k, v)
            for k, v in ev[2]  # type: ignore[attr-defined]
        ),
    )


def rewrite(doc: str) -> str:
    return rewrite_html(doc, make_click_url=fake_click, pixel_url=PIXEL_URL)


# --------------------------------------------------------------------------- fixtures


def test_newsletter_with_tables_mso_and_style() -> None:
    doc = (FIXTURES / "newsletter_tables.html").read_text()
    out = rewrite(doc)
    assert_only_hrefs_and_pixel_changed(doc, out)
    assert rewritten_urls(out) == [
        "https://www.example.com/?utm_source=newsletter&utm_medium=email&utm_campaign=spring",
        "HTTPS://WWW.EXAMPLE.COM/Sale?Season=Spring&Year=2026",
        "https://blog.example.com/posts/spring-2026?ref=mail&id=7",
        "http://example.org/plain",
        "https://shop.example.com/button?c=1&d=%C3%A9",
        "https://example.com/view-online?id=1&x=2",
        "https://maps.example.com/store?id=1&z=3",
    ]
    # untouched: comments, <style>, MSO conditional blocks, non-http links, notrack links
    for kept in (
        "https://in-style.example.com/",
        "https://in-comment.example.com/",
        'href="https://shop.example.com/mso-button"',
        'href="https://shop.example.com/mso-link"',
        'href="mailto:help@example.com?subject=Spring%20sale"',
        'href="tel:+15551234567"',
        'href="#offers"',
        'href="/account/preferences"',
        'href="javascript:void(0)"',
        '<a href="https://example.com/unsubscribe?u=123&amp;l=456" data-relaygate-notrack>',
        '<a data-relaygate-notrack="" href="https://example.com/privacy">',
        'url("https://cdn.example.com/bg.png")',
    ):
        assert kept in out
    # the quoting style of each attribute is kept
    assert '<A HREF="https://trk.example/t/c/' in out
    assert "href='https://trk.example/t/c/" in out
    assert "<a href=https://trk.example/t/c/" in out
    # the pixel sits just before </body>
    assert out.index(PIXEL) + len(PIXEL) == out.rindex("</body>")


def test_receipt_uppercase_script_unicode_and_trailing_comment() -> None:
    doc = (FIXTURES / "receipt_uppercase.html").read_text()
    out = rewrite(doc)
    assert_only_hrefs_and_pixel_changed(doc, out)
    assert rewritten_urls(out) == [
        "https://shop.example.com/orders/1001?t=abc",
        "https://shop.example.com/reset?token=a%2Fb%3D&user=1",
        "https://münchen.example/straße?q=ü&r=1",
        "https://first.example.com/",
        'https://x.example.com/q?a="quoted"&b=<tag>',
    ]
    assert 'href="https://second.example.com/"' in out  # browsers follow the first href only
    assert "in-script.example.com" in out and "//cdn.example.com/scheme-relative" in out
    # the pixel goes before the real </BODY>, not the one in <script> or in the comment
    assert out.index(PIXEL) + len(PIXEL) == out.index("</BODY>")
    assert out.count("</body>") == 2


def test_fragment_without_body_gets_pixel_appended() -> None:
    doc = (FIXTURES / "fragment.html").read_text()
    out = rewrite(doc)
    assert_only_hrefs_and_pixel_changed(doc, out)
    assert out.endswith(PIXEL)
    assert rewritten_urls(out) == ["https://reports.example.com/r/9f8e7d?format=pdf&inline=1"]


# --------------------------------------------------------------------------- details


def test_output_attribute_is_escaped_for_its_quote_style() -> None:
    def weird(url: str) -> str:
        return "https://t.example/c?u=1&v=\"'<>"

    assert (
        rewrite_html('<a href="https://a.example/">x</a>', make_click_url=weird, pixel_url=None)
        == '<a href="https://t.example/c?u=1&amp;v=&quot;&#x27;&lt;&gt;">x</a>'
    )
    assert (
        rewrite_html("<a href='https://a.example/'>x</a>", make_click_url=weird, pixel_url=None)
        == "<a href='https://t.example/c?u=1&amp;v=&quot;&#x27;&lt;&gt;'>x</a>"
    )
    # an unquoted value that would not survive unquoted gets double quotes
    assert (
        rewrite_html("<a href=https://a.example/>x</a>", make_click_url=weird, pixel_url=None)
        == '<a href="https://t.example/c?u=1&amp;v=&quot;&#x27;&lt;&gt;">x</a>'
    )


def test_make_click_url_returning_none_leaves_the_link() -> None:
    doc = '<a href="https://a.example/">x</a>'
    assert rewrite_html(doc, make_click_url=lambda _u: None, pixel_url=None) == doc


def test_no_pixel_when_pixel_url_is_none_and_nothing_else_changes() -> None:
    doc = "<html><body><p>plain</p></body></html>"
    assert rewrite_html(doc, make_click_url=fake_click, pixel_url=None) == doc


@pytest.mark.parametrize(
    "doc",
    [
        "<p>hi</p><!-- unterminated comment",
        "<p>hi</p><script>var a = 1;",
        '<p>hi</p><a href="https://x.example/',
        "<p>hi</p><a",
    ],
)
def test_no_pixel_appended_into_an_unfinished_construct(doc: str) -> None:
    out = rewrite_html(doc, make_click_url=fake_click, pixel_url=PIXEL_URL)
    assert out == doc


def test_pixel_before_last_body_end_case_insensitively() -> None:
    doc = "<body>a</Body><body>b</BODY>tail"
    out = rewrite_html(doc, make_click_url=fake_click, pixel_url=PIXEL_URL)
    assert out == "<body>a</Body><body>b" + PIXEL + "</BODY>tail"


def test_pixel_url_is_escaped() -> None:
    assert 'src="https://t.example/o?a=1&amp;b=&quot;"' in pixel_tag('https://t.example/o?a=1&b="')


def test_track_html_uses_real_tokens_per_recipient() -> None:
    key = b"k" * 32
    doc = '<html><body><a href="https://a.example/x?y=1&amp;z=2">x</a></body></html>'
    out = track_html(
        doc,
        public_url="https://track.example.net/",
        key=key,
        account_id=7,
        message_id="msg_" + "0" * 31 + "1",
        recipient_id=99,
        issued_at=1_790_000_000.5,
    )
    m = re.search(r'href="https://track\.example\.net/t/c/([A-Za-z0-9_-]+)"', out)
    assert m is not None
    ref = read_token(m.group(1), keys=[key], kind="c")
    assert ref is not None
    assert (ref.account_id, ref.recipient_id, ref.url) == (7, 99, "https://a.example/x?y=1&z=2")
    assert ref.issued_at == 1_790_000_000
    p = re.search(r'src="https://track\.example\.net/t/o/([A-Za-z0-9_-]+)"', out)
    assert p is not None
    oref = read_token(p.group(1), keys=[key], kind="o")
    assert oref is not None and oref.url is None and oref.message_id.endswith("01")
    assert click_url("https://track.example.net/", "T") == "https://track.example.net/t/c/T"
    assert open_url("https://track.example.net", "T") == "https://track.example.net/t/o/T"


def test_track_html_switches_and_untrackable_urls() -> None:
    key = b"k" * 32
    ids = {"account_id": 1, "message_id": "msg_" + "a" * 32, "recipient_id": 2, "issued_at": 0}
    doc = '<body><a href="https://a.example/">x</a></body>'
    assert (
        track_html(doc, public_url="https://t.x", key=key, opens=False, clicks=False, **ids) == doc
    )
    only_opens = track_html(doc, public_url="https://t.x", key=key, clicks=False, **ids)
    assert 'href="https://a.example/"' in only_opens and "/t/o/" in only_opens
    only_clicks = track_html(doc, public_url="https://t.x", key=key, opens=False, **ids)
    assert "/t/c/" in only_clicks and "<img" not in only_clicks
    huge = '<a href="https://a.example/?q=' + "x" * 10_000 + '">big</a>'
    assert track_html(huge, public_url="https://t.x", key=key, opens=False, **ids) == huge


# --------------------------------------------------------------------------- fuzz

_html_bits = st.sampled_from(
    [
        "<a href='https://a.example/?x=1&amp;y=2'>",
        '<a href="http://b.example/">',
        "<a href=https://c.example/p>",
        '<A HREF="mailto:x@y">',
        "</a>",
        "<body>",
        "</body>",
        "</BODY>",
        "<!--",
        "-->",
        "<!--[if mso]>",
        "<![endif]-->",
        "<style>",
        "</style>",
        "<script>",
        "</script>",
        "<![CDATA[",
        "<![",
        "<title>",
        "</title>",
        "<textarea>",
        "</textarea>",
        "<a href='https://t.example/' href=x>",
        "<!DOCTYPE html>",
        "<?xml?>",
        "<p>",
        "<br/>",
        "&amp;",
        "&#38;",
        "&",
        "<",
        ">",
        '"',
        "'",
        "=",
        " ",
        "\n",
        "text",
        "é",
        "<a data-relaygate-notrack href='https://n.example/'>",
        "<area href=https://d.example/ />",
    ]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(_html_bits, st.text(max_size=8)), max_size=40))
def test_fuzz_never_raises_and_keeps_the_text(bits: list[str]) -> None:
    doc = "".join(bits)
    out = rewrite(doc)
    assert "".join(parse(out).text) == "".join(parse(doc).text)
    body = out.replace(PIXEL, "", 1) if PIXEL in out else out
    # outside the tracked values, the document is unchanged byte for byte
    texts = _TRACKED.split(body)[0::2]
    assert re.fullmatch("(.*?)".join(re.escape(t) for t in texts), doc, flags=re.DOTALL)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_fuzz_arbitrary_text_never_raises(doc: str) -> None:
    out = rewrite(doc)
    assert isinstance(out, str)
    assert "".join(parse(out).text) == "".join(parse(doc).text)


def test_markup_inside_title_and_textarea_is_text_and_left_alone() -> None:
    doc = (
        '<html><head><title>Deals <a href="https://in-title.example/">x</a></body></title></head>'
        '<body><textarea><a href="https://in-textarea.example/">y</a></body></textarea>'
        '<a href="https://real.example/">z</a></body></html>'
    )
    out = rewrite(doc)
    assert rewritten_urls(out) == ["https://real.example/"]
    assert (
        'href="https://in-title.example/"' in out and 'href="https://in-textarea.example/"' in out
    )
    assert out.index(PIXEL) + len(PIXEL) == out.rindex("</body>")
