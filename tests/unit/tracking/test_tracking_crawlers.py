"""events.crawlers.is_crawler: the crawlerdetect package's verdict, at a bounded cost."""

from __future__ import annotations

import pytest
from crawlerdetect import CrawlerDetect
from crawlerdetect.providers.crawlers import data as crawler_patterns
from hypothesis import given, settings
from hypothesis import strategies as st

from relaygate.events.crawlers import MAX_MATCHED, is_crawler

PACKAGE = CrawlerDetect()

KNOWN = [
    "Mozilla/5.0 (compatible; SemrushBot/7~bl; +http://www.semrush.com/bot.html)",
    "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
    "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
    "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like "
    "Gecko) Chrome/120.0.6099.71 Mobile Safari/537.36 (compatible; Googlebot/2.1; "
    "+http://www.google.com/bot.html)",
    "Dart/3.2 (dart:io)",
    "Amazon Simple Notification Service Agent",
    "Ruby",
    "Microsoft Office Existence Discovery",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko)",
    "Mozilla/5.0",
    "",
    "   ",
]


@pytest.mark.parametrize("ua", KNOWN)
def test_known_agents_agree_with_the_package(ua: str) -> None:
    assert is_crawler(ua) is PACKAGE.is_crawler(ua)


def test_every_listed_pattern_is_recognised() -> None:
    # Each literal name of the list, on its own and inside a browser's user agent.
    names = [p for p in crawler_patterns if p.isalnum()]
    assert len(names) > 500
    for name in names:
        browser = f"Mozilla/5.0 (Windows NT 10.0; Win64; x64) {name}/1.0"
        assert is_crawler(name) is PACKAGE.is_crawler(name), name
        assert is_crawler(browser) is PACKAGE.is_crawler(browser), browser


@settings(max_examples=400, deadline=None)
@given(
    st.text(
        alphabet=st.sampled_from(
            list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ;/()._-+:!~")
        ),
        max_size=MAX_MATCHED,
    )
)
def test_agrees_with_the_package_on_any_agent(ua: str) -> None:
    assert is_crawler(ua) is PACKAGE.is_crawler(ua)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [p for p in crawler_patterns if p.isalnum()]
            + ["Mozilla/5.0", "Safari/537.36", " ", "(", ";"]
        ),
        max_size=8,
    )
)
def test_agrees_on_agents_made_of_list_words(parts: list[str]) -> None:
    ua = " ".join(parts)
    assert is_crawler(ua) is PACKAGE.is_crawler(ua)


def test_any_text_is_answered() -> None:
    assert is_crawler("\x00" * 600) in (True, False)
    assert is_crawler("x" * 10_000) in (True, False)
