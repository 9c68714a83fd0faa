"""Telling machine opens and clicks from human ones (pure; no I/O).

``classify_hit`` flags one tracking hit:

* ``is_proxy``: the request came from a mail provider's privacy/image proxy, so it says the
  message was fetched, not that a person looked at it.

  - Apple Mail Privacy Protection prefetches every remote image through Apple's relay. Its
    known fingerprint is a user agent of exactly ``Mozilla/5.0`` with nothing else. Its egress
    addresses are the iCloud Private Relay egress list Apple publishes at
    https://mask-api.icloud.com/egress-ip-ranges.csv (hundreds of thousands of ranges, updated
    by Apple; too large and too fast-moving to ship here). Operators who want it load it with
    ``parse_networks`` into ``BotPolicy.proxy_networks``. Apple's own 17.0.0.0/8 is built in.
  - Gmail fetches images through its proxy: user agent contains ``GoogleImageProxy``
    (``... (via ggpht.com GoogleImageProxy)``).
  - Yahoo / AOL: user agent contains ``YahooMailProxy``.
  - Outlook/Office 365: image fetches made by Microsoft's mail servers come from the
    Exchange Online Protection ranges published in ``spf.protection.outlook.com``
    (``MICROSOFT_EOP_NETWORKS``); no person browses from a mail server.

* ``is_scanner``: the hit is an automated check rather than a person:

  - a ``HEAD`` request (browsers and mail clients use ``GET`` for links and images);
  - a hit less than ``BotPolicy.scanner_window_s`` seconds (default 10) after delivery, or
    before it (negative: scanners in front of the mailbox fetch before the message is
    accepted). Secure email gateways (Mimecast, Proofpoint URL Defense, Barracuda, Microsoft
    Defender Safe Links) follow links at delivery time; a person rarely clicks within 10 s;
  - a user agent containing a known scanner or automation marker (``SCANNER_UA_MARKERS``),
    or an empty one (every browser sends one);
  - a click whose user agent is the bare ``Mozilla/5.0`` (Apple's prefetch never clicks; a real
    browser says more about itself);
  - a click from a proxy network (an image proxy does not follow links);
  - a user agent on the maintained list of generic crawlers (SemrushBot, AhrefsBot, YandexBot,
    ... : the ``crawlerdetect`` package's list, a port of Crawler-Detect's, well over a thousand
    patterns, matched by ``events.crawlers``), unless it is a mail client's: that list names some mail readers as bots
    ("Microsoft Outlook", "Microsoft Office/16.0 (... Outlook ...)", "Outlook-iOS", Apple Mail's
    "Mail/...", "Airmail"), and a person reading mail in them is exactly what an open is.
    The mail-specific rules come first: an image proxy stays a proxy, not a crawler.

Both flags can be set at once. ``first`` (the first human open/click per recipient) needs the
store's count of earlier human hits; ``is_first_human`` is the pure rule over that count.

Trusts nothing: every input here comes from an anonymous HTTP request (the tracking app caps
the user agent at 512 characters; ``events.crawlers`` bounds the crawler list's cost, and a
bounded cache answers repeated user agents).
"""

from __future__ import annotations

import bisect
import functools
import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Literal

from relaygate.events.crawlers import is_crawler
from relaygate.store.models import HitFlags, TrackingHit

__all__ = [
    "APPLE_NETWORKS",
    "DEFAULT_POLICY",
    "MAIL_CLIENT_UA_RE",
    "MICROSOFT_EOP_NETWORKS",
    "PROXY_UA_MARKERS",
    "SCANNER_UA_MARKERS",
    "BotPolicy",
    "HitFlags",
    "NetworkSet",
    "classify_hit",
    "is_first_human",
    "is_listed_crawler",
    "parse_networks",
]

APPLE_MPP_USER_AGENT = "Mozilla/5.0"

PROXY_UA_MARKERS: tuple[str, ...] = (
    "googleimageproxy",  # Gmail: "Mozilla/5.0 ... (via ggpht.com GoogleImageProxy)"
    "yahoomailproxy",  # Yahoo Mail / AOL: "YahooMailProxy; https://help.yahoo.com/kb/..."
)
"""Lowercase substrings of user agents of mail providers' image proxies."""

SCANNER_UA_MARKERS: tuple[str, ...] = (
    # secure email gateways and link protection
    "barracuda",
    "mimecast",
    "proofpoint",
    "urldefense",
    "ironport",
    "safelinks",
    "safe links",
    "microsoft defender",
    "messagelabs",
    "symantec",
    "forcepoint",
    "trend micro",
    "trendmicro",
    "sophos",
    "fortiguard",
    "fortimail",
    "check point",
    "checkpoint",
    "avanan",
    "zscaler",
    "trustwave",
    "mailmarshal",
    "cloudmark",
    "hornetsecurity",
    "spamtitan",
    "libraesva",
    "vadesecure",
    # link-preview and crawler agents
    "googlebot",
    "bingbot",
    "bingpreview",
    "slackbot",
    "twitterbot",
    "linkedinbot",
    "discordbot",
    "telegrambot",
    "applebot",
    "facebookexternalhit",
    "whatsapp",
    "skypeuripreview",
    "crawler",
    "spider",
    # Office checking that a link exists before opening it (Word, Outlook)
    "existence discovery",
    "protocol discovery",
    # automation libraries and headless browsers
    "headlesschrome",
    "phantomjs",
    "python-requests",
    "python-urllib",
    "aiohttp",
    "httpx",
    "go-http-client",
    "okhttp",
    "java/",
    "apache-httpclient",
    "libwww-perl",
    "curl/",
    "wget/",
)
"""Lowercase substrings of user agents of link scanners, previewers and scripts."""

MAIL_CLIENT_UA_RE = re.compile(
    r"microsoft outlook|microsoft office outlook|outlook-(?:ios|android)|\bms-office\b"
    r"|^microsoft office/[\d.]+ \([^)]*outlook|^airmail/|^mail/\d|thunderbird",
    re.IGNORECASE,
)
"""User agents of mail clients (people reading mail) that the generic crawler list calls bots."""


@functools.lru_cache(maxsize=4096)
def is_listed_crawler(user_agent: str) -> bool:
    """True when the generic crawler list names ``user_agent`` and it is no mail client's."""
    return not MAIL_CLIENT_UA_RE.search(user_agent) and is_crawler(user_agent)


APPLE_NETWORKS: tuple[str, ...] = ("17.0.0.0/8",)
"""Apple's own allocation. MPP mostly egresses through Private Relay partners: load that list."""

MICROSOFT_EOP_NETWORKS: tuple[str, ...] = (
    # Exchange Online Protection outbound, as published in spf.protection.outlook.com.
    "40.92.0.0/15",
    "40.107.0.0/16",
    "52.100.0.0/15",
    "52.102.0.0/16",
    "52.103.0.0/17",
    "104.47.0.0/17",
    "2a01:111:f400::/48",
    "2a01:111:f403::/48",
)

_Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class NetworkSet:
    """A set of IP networks with O(log n) membership, fit for a few hundred thousand ranges."""

    def __init__(self, networks: Iterable[str | ipaddress.IPv4Network | ipaddress.IPv6Network]):
        spans: dict[int, list[tuple[int, int]]] = {4: [], 6: []}
        for net in networks:
            n = ipaddress.ip_network(net, strict=False) if isinstance(net, str) else net
            spans[n.version].append((int(n.network_address), int(n.broadcast_address)))
        self._starts: dict[int, list[int]] = {}
        self._ends: dict[int, list[int]] = {}
        for version, items in spans.items():
            merged: list[tuple[int, int]] = []
            for start, end in sorted(items):
                if merged and start <= merged[-1][1] + 1:
                    merged[-1] = (merged[-1][0], max(merged[-1][1], end))
                else:
                    merged.append((start, end))
            self._starts[version] = [s for s, _ in merged]
            self._ends[version] = [e for _, e in merged]

    def __len__(self) -> int:
        return sum(len(v) for v in self._starts.values())

    def __contains__(self, ip: object) -> bool:
        addr: _Address
        if isinstance(ip, str):
            try:
                addr = ipaddress.ip_address(ip.strip())
            except ValueError:
                return False
        elif isinstance(ip, ipaddress.IPv4Address | ipaddress.IPv6Address):
            addr = ip
        else:
            return False
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        value = int(addr)
        starts = self._starts[addr.version]
        i = bisect.bisect_right(starts, value) - 1
        return i >= 0 and value <= self._ends[addr.version][i]


def parse_networks(text: str) -> list[str]:
    """CIDRs from a one-per-line list or a CSV whose first column is a CIDR.

    Reads Apple's ``egress-ip-ranges.csv`` (``cidr,country,region,city,``) as well as plain
    lists; blank lines, ``#`` comments and lines whose first field is not a network are skipped.
    """
    out: list[str] = []
    for line in text.splitlines():
        first = line.split("#", 1)[0].split(",", 1)[0].strip()
        if not first:
            continue
        try:
            out.append(str(ipaddress.ip_network(first, strict=False)))
        except ValueError:
            continue
    return out


@dataclass(frozen=True, kw_only=True)
class BotPolicy:
    """Thresholds and lists for ``classify_hit``; the defaults are the documented ones."""

    scanner_window_s: float = 10.0
    proxy_networks: NetworkSet = field(default_factory=lambda: NetworkSet(APPLE_NETWORKS))
    scanner_networks: NetworkSet = field(default_factory=lambda: NetworkSet(MICROSOFT_EOP_NETWORKS))
    proxy_ua_markers: tuple[str, ...] = PROXY_UA_MARKERS
    scanner_ua_markers: tuple[str, ...] = SCANNER_UA_MARKERS
    crawler_list: bool = True  # also consult the generic crawler list (is_listed_crawler)


DEFAULT_POLICY = BotPolicy()


def classify_hit(
    *,
    kind: Literal["o", "c"],
    method: str,
    ip: str,
    user_agent: str,
    seconds_since_delivery: float | None,
    policy: BotPolicy = DEFAULT_POLICY,
) -> HitFlags:
    """Flag one open (``kind="o"``) or click (``kind="c"``) hit. See the module docstring.

    ``seconds_since_delivery`` is hit time minus the recipient's delivery time, ``None`` when
    the recipient has no recorded delivery yet (then timing says nothing).
    """
    ua = user_agent.strip()
    ua_lower = ua.lower()
    bare_mozilla = ua == APPLE_MPP_USER_AGENT
    is_proxy = (
        bare_mozilla
        or any(m in ua_lower for m in policy.proxy_ua_markers)
        or ip in policy.proxy_networks
    )
    is_scanner = (
        method.upper() == "HEAD"
        or (seconds_since_delivery is not None and seconds_since_delivery < policy.scanner_window_s)
        or not ua
        or any(m in ua_lower for m in policy.scanner_ua_markers)
        or ip in policy.scanner_networks
        or (policy.crawler_list and not is_proxy and is_listed_crawler(ua))
    )
    if kind == "c" and is_proxy:
        is_scanner = True
    if kind == "c" and bare_mozilla:
        is_proxy = False  # Apple's prefetch fetches images, not links: this is some script
    return HitFlags(is_proxy=is_proxy, is_scanner=is_scanner)


def classify_tracking_hit(
    hit: TrackingHit, seconds_since_delivery: float | None, previous_human_hits: int
) -> HitFlags:
    """The classifier the store's ``Tracking.record_hits`` applies to each hit it writes."""
    flags = classify_hit(
        kind=hit.kind,
        method=hit.method,
        ip=hit.ip,
        user_agent=hit.user_agent,
        seconds_since_delivery=seconds_since_delivery,
    )
    return replace(flags, first=is_first_human(previous_human_hits, flags))


def is_first_human(previous_human_hits: int, flags: HitFlags) -> bool:
    """Whether this hit is the recipient's first human open (or click): ``first`` in events.

    ``previous_human_hits`` is how many earlier hits of the same kind for the same recipient
    were human (neither proxy nor scanner).
    """
    return previous_human_hits <= 0 and flags.is_human
