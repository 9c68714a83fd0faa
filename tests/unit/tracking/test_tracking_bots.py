"""classify_hit and is_first_human: proxies, scanners, humans."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relaygate.events.bots import (
    BotPolicy,
    HitFlags,
    NetworkSet,
    classify_hit,
    is_first_human,
    parse_networks,
)

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
IPHONE_MAIL = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko)"
GMAIL_PROXY = (
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
)
HUMAN_IP = "198.51.100.23"
LATE = 3600.0


def flags(
    *,
    kind: str = "o",
    method: str = "GET",
    ip: str = HUMAN_IP,
    ua: str = CHROME,
    since: float | None = LATE,
    policy: BotPolicy | None = None,
) -> HitFlags:
    extra = {"policy": policy} if policy is not None else {}
    return classify_hit(
        kind=kind,  # type: ignore[arg-type]
        method=method,
        ip=ip,
        user_agent=ua,
        seconds_since_delivery=since,
        **extra,  # type: ignore[arg-type]
    )


def test_a_person_in_a_browser_is_human() -> None:
    for kind in ("o", "c"):
        f = flags(kind=kind)
        assert f == HitFlags(is_proxy=False, is_scanner=False) and f.is_human
    assert flags(ua=IPHONE_MAIL).is_human
    assert flags(since=None).is_human  # no delivery time known: timing says nothing


@pytest.mark.parametrize(
    "ua",
    [
        "Mozilla/5.0",  # Apple Mail Privacy Protection prefetch
        " Mozilla/5.0 ",
        GMAIL_PROXY,
        "YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html",
    ],
)
def test_mail_privacy_proxies_are_flagged_on_opens(ua: str) -> None:
    f = flags(ua=ua)
    assert f.is_proxy and not f.is_scanner


@pytest.mark.parametrize("ip", ["17.58.1.2", "::ffff:17.58.1.2"])
def test_apple_network_is_a_proxy(ip: str) -> None:
    assert flags(ip=ip).is_proxy


def test_bare_mozilla_click_is_a_scanner_not_a_proxy() -> None:
    f = flags(kind="c", ua="Mozilla/5.0")
    assert f.is_scanner and not f.is_proxy


def test_click_from_image_proxy_is_a_scanner() -> None:
    f = flags(kind="c", ua=GMAIL_PROXY)
    assert f.is_proxy and f.is_scanner


@pytest.mark.parametrize(
    "ua",
    [
        "Barracuda Sentinel (EE)",
        "Mozilla/5.0 (compatible; Mimecast URL Protect)",
        "Proofpoint URL Defense",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) HeadlessChrome/120.0.0.0 Safari/537.36",
        "python-requests/2.31.0",
        "curl/8.5.0",
        "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
        "facebookexternalhit/1.1",
        "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
        "",
        "   ",
    ],
)
def test_scanner_user_agents(ua: str) -> None:
    assert flags(kind="c", ua=ua).is_scanner
    assert flags(kind="o", ua=ua).is_scanner


def test_head_requests_are_scanners() -> None:
    assert flags(method="HEAD").is_scanner
    assert flags(method="head", kind="c").is_scanner
    assert not flags(method="GET").is_scanner


@pytest.mark.parametrize(
    ("since", "scanner"), [(-30.0, True), (0.0, True), (9.9, True), (10.0, False), (600.0, False)]
)
def test_hits_right_after_delivery_are_scanners(since: float, scanner: bool) -> None:
    assert flags(kind="c", since=since).is_scanner is scanner


def test_window_is_configurable() -> None:
    policy = BotPolicy(scanner_window_s=60.0)
    assert flags(since=30.0, policy=policy).is_scanner
    assert not flags(since=30.0).is_scanner


def test_microsoft_eop_range_is_a_scanner() -> None:
    assert flags(kind="c", ip="40.107.22.10").is_scanner
    assert flags(kind="c", ip="2a01:111:f403:c000::1").is_scanner
    assert not flags(kind="c", ip="40.106.255.255").is_scanner


def test_operator_loaded_proxy_list() -> None:
    csv = "# Apple egress\n172.224.226.0/27,GB,GB-EN,London,\n2a02:26f7:b3c0:4000::/64,GB,GB-EN,London,\n\nbogus,line\n"
    nets = parse_networks(csv)
    assert nets == ["172.224.226.0/27", "2a02:26f7:b3c0:4000::/64"]
    policy = BotPolicy(proxy_networks=NetworkSet(nets))
    assert flags(ip="172.224.226.5", policy=policy).is_proxy
    assert flags(ip="2a02:26f7:b3c0:4000::99", policy=policy).is_proxy
    assert not flags(ip="172.224.226.40", policy=policy).is_proxy
    assert not flags(ip="17.0.0.1", policy=policy).is_proxy  # replaced, not added


def test_network_set_membership_and_merging() -> None:
    s = NetworkSet(["10.0.0.0/24", "10.0.1.0/24", "10.0.0.128/25", "fd00::/8"])
    assert len(s) == 2  # the three IPv4 ranges merge into one
    assert "10.0.0.0" in s and "10.0.1.255" in s and "fd12::1" in s
    assert "10.0.2.0" not in s and "9.255.255.255" not in s and "fe80::1" not in s
    assert "not an ip" not in s and "" not in s and 42 not in s


def test_network_set_scales() -> None:
    nets = [f"100.{i // 256}.{i % 256}.0/25" for i in range(0, 60_000, 2)]
    s = NetworkSet(nets)
    assert "100.0.0.5" in s and "100.0.1.5" not in s and "100.0.2.127" in s


def test_first_human() -> None:
    human = HitFlags(is_proxy=False, is_scanner=False)
    assert is_first_human(0, human)
    assert not is_first_human(1, human)
    assert not is_first_human(0, HitFlags(is_proxy=True, is_scanner=False))
    assert not is_first_human(0, HitFlags(is_proxy=False, is_scanner=True))


@pytest.mark.parametrize(
    "ua",
    [
        "Mozilla/5.0 (compatible; SemrushBot/7~bl; +http://www.semrush.com/bot.html)",
        "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
        "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
        "Mozilla/5.0 (compatible; MJ12bot/v1.4.8; http://mj12bot.com/)",
        "Mozilla/5.0 (compatible; DotBot/1.2; +https://opensiteexplorer.org/dotbot)",
        "Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)",
        "Microsoft Office Existence Discovery",
    ],
)
def test_generic_crawlers_are_scanners_late_after_delivery(ua: str) -> None:
    for kind in ("o", "c"):
        f = flags(kind=kind, ua=ua)
        assert f.is_scanner and not f.is_human, (kind, ua)


def test_the_crawler_list_can_be_switched_off() -> None:
    semrush = "Mozilla/5.0 (compatible; SemrushBot/7~bl; +http://www.semrush.com/bot.html)"
    assert flags(ua=semrush, policy=BotPolicy(crawler_list=False)).is_human


@pytest.mark.parametrize(
    "ua",
    [
        # The generic list calls these bots; they are people reading their mail.
        "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17029; Pro)",
        "Mozilla/5.0 (Windows NT 10.0; WOW64; Trident/7.0; Microsoft Outlook 16.0.4266; ms-office)",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
        "Gecko) Mobile/15E148 Outlook-iOS/723.4027091.prod.iphone (4.2349.0)",
        "Mail/3731.700.6 CFNetwork/1335.0.3 Darwin/21.6.0",
        "Airmail/5.0 CFNetwork/1220.1 Darwin/20.3.0",
        "Mozilla/5.0 (X11; Linux x86_64; rv:115.0) Gecko/20100101 Thunderbird/115.5.0",
        IPHONE_MAIL,
        CHROME,
    ],
)
def test_mail_clients_are_human_although_the_crawler_list_names_some(ua: str) -> None:
    assert flags(ua=ua).is_human
    assert flags(kind="c", ua=ua).is_human


def test_image_proxies_stay_proxies_not_crawlers() -> None:
    # The generic list also names Gmail's and Yahoo's image proxies: the mail rules come first.
    for ua in (
        GMAIL_PROXY,
        "YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html",
    ):
        f = flags(ua=ua)
        assert f.is_proxy and not f.is_scanner


@settings(max_examples=200, deadline=None)
@given(
    ua=st.text(max_size=512),
    method=st.text(max_size=8),
    ip=st.text(max_size=45),
    kind=st.sampled_from(["o", "c"]),
)
def test_any_request_is_classified_without_error(ua: str, method: str, ip: str, kind: str) -> None:
    got = flags(kind=kind, method=method, ip=ip, ua=ua)
    assert isinstance(got, HitFlags)
    if not ua.strip():
        assert got.is_scanner
