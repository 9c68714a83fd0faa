"""The generic crawler list (SemrushBot, AhrefsBot, YandexBot...), matched fast enough for hits.

Owns matching a user agent against the crawler list the ``crawlerdetect`` package maintains (MIT,
a port of the Crawler-Detect project's list: ~1,460 patterns and the browser tokens to strip
first). The package answers the same question with one alternation of every pattern, which
Python's ``re`` tries at each position of the text: about 0.6 ms for a browser's user agent and
over 10 ms for 512 characters of junk, under the GIL, for every tracking hit. Here the same
patterns are compiled once, lazily, into three expressions: the literal names as a character
trie (most of the list), the start-anchored ones matched once at the start, and the few real
expressions. The answer is the package's own (a differential test holds the two equal); only
the first ``MAX_MATCHED`` characters left after the browser tokens are stripped are looked at,
which bounds the cost of hostile input (real crawler names come early).

Trusts nothing in its input: any string.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import TypeAlias

from crawlerdetect.providers.crawlers import data as _CRAWLER_PATTERNS
from crawlerdetect.providers.exclusions import data as _BROWSER_TOKENS

__all__ = ["MAX_MATCHED", "is_crawler"]

#: How much of a user agent, once the browser tokens are stripped, is matched against the list.
MAX_MATCHED = 200

# A pattern that is a literal once its backslash escapes of punctuation are undone.
_ESCAPED_LITERAL = re.compile(r"^(?:[^\\\[\]()*+?{}|^$.]|\\[^A-Za-z0-9])+$")
# The list's catch-all: a leading "[a-z0-9\-_]*" changes what is matched, not whether.
_CATCH_ALL_PREFIX = "[a-z0-9\\-_]*("


@dataclass(frozen=True, kw_only=True)
class _Compiled:
    browser_tokens: re.Pattern[str]
    names: re.Pattern[str]
    anchored: re.Pattern[str]
    others: re.Pattern[str]


_Node: TypeAlias = dict[str, "_Node"]


def _trie(words: list[str]) -> str:
    """One expression for many literals, sharing prefixes: fails on the first differing char."""
    root: _Node = {}
    for word in words:
        node = root
        for ch in word.lower():
            node = node.setdefault(ch, {})
        node[""] = {}

    def build(node: _Node) -> str:
        branches = [re.escape(ch) + build(sub) for ch, sub in sorted(node.items()) if ch]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        return f"(?:{body})?" if "" in node else body

    return build(root)


@functools.cache
def _compiled() -> _Compiled:
    names: list[str] = []
    anchored: list[str] = []
    others: list[str] = []
    for pattern in _CRAWLER_PATTERNS:
        if _ESCAPED_LITERAL.match(pattern):
            names.append(re.sub(r"\\(.)", r"\1", pattern))
        elif pattern.startswith("^") and "|" not in pattern:
            anchored.append(pattern[1:])
        elif pattern.startswith(_CATCH_ALL_PREFIX):
            others.append(pattern[len(_CATCH_ALL_PREFIX) - 1 :])
        else:
            others.append(pattern)
    return _Compiled(
        browser_tokens=re.compile("|".join(f"(?:{t})" for t in _BROWSER_TOKENS), re.IGNORECASE),
        names=re.compile(_trie(names), re.IGNORECASE),
        anchored=re.compile("|".join(f"(?:{p})" for p in anchored), re.IGNORECASE),
        others=re.compile("|".join(f"(?:{p})" for p in others), re.IGNORECASE),
    )


def is_crawler(user_agent: str) -> bool:
    """True when the crawler list names this user agent (``crawlerdetect``'s own verdict)."""
    agent = user_agent.strip()
    if not agent:
        return False
    c = _compiled()
    rest = c.browser_tokens.sub("", agent)[:MAX_MATCHED]
    if not rest:
        return False
    return bool(c.names.search(rest) or c.anchored.match(rest) or c.others.search(rest))
