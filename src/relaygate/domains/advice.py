"""SPF and DMARC advice: what is wrong with a domain's published policy records, in plain words.

Reads records through an injected ``TxtLookup`` (``lookups.txt`` bound to a resolver), so the
parsing is pure and testable. Trusts nothing it reads: records are parsed defensively, the SPF
include/redirect walk is bounded (visited set, a query budget), and domain-specs with macros are
counted but not followed. The result is advice only; it never changes a domain's state.

SPF (RFC 7208): one record per name (more is a permerror, §4.5); at most 10 DNS-querying terms
(include, a, mx, ptr, exists, redirect) counted recursively (§4.6.4). DMARC (RFC 7489): one
``v=DMARC1`` record at ``_dmarc.<domain>``, with a ``p=`` of none, quarantine or reject;
``p=none`` only monitors. Where the domain has none, the record that applies is found as
receivers find it today, by the DNS Tree Walk of DMARCbis (RFC 9989): the names above the domain
are asked in turn, longest first (a name of more than seven labels jumps to its last seven), up
to the top-level domain, and the first record found applies (its ``sp=`` if it has one). No
public suffix list: ``mail.example.co.uk`` gets ``example.co.uk``'s record, never ``co.uk``'s
unless that is the only one, and then the advice says it is a public suffix's (``psd=y``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from relaygate.domains.lookups import DnsTemporaryFailure

TxtLookup = Callable[[str], Awaitable[list[str]]]

SPF_LOOKUP_LIMIT = 10
_SPF_QUERY_BUDGET = 40
_LOOKUP_MECHANISMS = ("include", "a", "mx", "ptr", "exists")


def spf_records(txts: list[str]) -> list[str]:
    """The SPF records among a name's TXT records (``v=spf1`` then a space or the end)."""
    return [t for t in txts if t.lower() == "v=spf1" or t.lower().startswith("v=spf1 ")]


def dmarc_records(txts: list[str]) -> list[str]:
    return [t for t in txts if t.replace(" ", "").lower().startswith("v=dmarc1")]


@dataclass(frozen=True, kw_only=True)
class SpfAdvice:
    records: tuple[str, ...]
    lookups: int
    warnings: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class DmarcAdvice:
    records: tuple[str, ...]
    policy: str | None
    source: str  # the name the record was found at ("" when none)
    warnings: tuple[str, ...]


def _terms(record: str) -> list[str]:
    return record.split()[1:]


def _mechanism(term: str) -> tuple[str, str]:
    """(name, argument) of an SPF term without its qualifier: ``~include:x`` → (include, x)."""
    if term[:1] in "+-~?":
        term = term[1:]
    if "=" in term and ":" not in term.split("=", 1)[0]:
        name, _, arg = term.partition("=")
        return name.lower() + "=", arg
    name, _, arg = term.partition(":")
    if "/" in name:
        name = name.split("/", 1)[0]
    return name.lower(), arg.split("/", 1)[0] if arg else ""


class _SpfWalk:
    """Counts DNS-querying terms as an evaluator would: a domain included twice counts twice."""

    def __init__(self, lookup: TxtLookup) -> None:
        self.lookup = lookup
        self.count = 0
        self.queries = 0
        self.cache: dict[str, list[str] | None] = {}
        self.warnings: list[str] = []
        self.truncated = False

    async def walk(self, record: str, where: str, path: tuple[str, ...]) -> None:
        terms = _terms(record)
        has_all = any(_mechanism(t)[0] == "all" for t in terms)
        for term in terms:
            if self.count > SPF_LOOKUP_LIMIT * 2:
                self.truncated = True
                return
            name, arg = _mechanism(term)
            if name in _LOOKUP_MECHANISMS:
                self.count += 1
                if name == "ptr":
                    self.warnings.append(
                        f"SPF of {where} uses ptr, which RFC 7208 says not to use (slow, unreliable)"
                    )
                if name == "include":
                    await self.follow(arg, f"include:{arg}", path)
            elif name == "redirect=" and not has_all:
                self.count += 1
                await self.follow(arg, f"redirect={arg}", path)
            if name == "all" and (term.startswith("+") or term.lower() == "all"):
                self.warnings.append(
                    f"SPF of {where} ends in +all, which authorizes every host on the internet"
                )

    async def follow(self, target: str, term: str, path: tuple[str, ...]) -> None:
        target = target.lower().rstrip(".")
        if not target or "%" in target:
            return  # a macro: known only at evaluation time
        if target in path:
            self.warnings.append(f"SPF {term}: includes itself (a loop), a permerror")
            return
        if target not in self.cache:
            if self.queries >= _SPF_QUERY_BUDGET:
                self.truncated = True
                return
            self.queries += 1
            try:
                self.cache[target] = spf_records(await self.lookup(target))
            except DnsTemporaryFailure:
                self.cache[target] = None
        found = self.cache[target]
        if found is None:
            self.warnings.append(f"SPF {term}: could not be looked up (temporary DNS failure)")
            return
        if not found:
            self.warnings.append(
                f"SPF {term}: {target} has no SPF record, so receivers get a permerror"
            )
            return
        if len(found) > 1:
            self.warnings.append(f"SPF {term}: {target} has {len(found)} SPF records (permerror)")
        await self.walk(found[0], target, (*path, target))


async def analyse_spf(domain: str, txts: list[str], lookup: TxtLookup) -> SpfAdvice:
    """Advice on ``domain``'s SPF, given its TXT records; follows include/redirect via ``lookup``."""
    records = spf_records(txts)
    if not records:
        return SpfAdvice(records=(), lookups=0, warnings=(f"SPF: {domain} has no SPF record",))
    warnings: list[str] = []
    if len(records) > 1:
        warnings.append(
            f"SPF: {domain} has {len(records)} SPF records; receivers treat more than one as a"
            " permanent error (RFC 7208 §4.5): merge them into one"
        )
    walk = _SpfWalk(lookup)
    await walk.walk(records[0], domain, (domain,))
    warnings.extend(walk.warnings)
    if walk.count > SPF_LOOKUP_LIMIT:
        more = "at least " if walk.truncated else ""
        warnings.append(
            f"SPF: {domain} needs {more}{walk.count} DNS lookups, over the limit of"
            f" {SPF_LOOKUP_LIMIT} (RFC 7208 §4.6.4): receivers return permerror; flatten or"
            " remove some include: mechanisms"
        )
    return SpfAdvice(records=tuple(records), lookups=walk.count, warnings=tuple(warnings))


def parse_dmarc(record: str) -> dict[str, str]:
    tags: dict[str, str] = {}
    for part in record.split(";"):
        name, sep, value = part.partition("=")
        if sep:
            tags.setdefault(name.strip().lower(), value.strip())
    return tags


#: DMARCbis: a name with more labels than this is shortened to its last this-many first.
TREE_WALK_MAX_LABELS = 7


def tree_walk_names(domain: str) -> list[str]:
    """The names the DNS Tree Walk asks after ``domain`` itself, in order: at most seven."""
    labels = [label for label in domain.rstrip(".").split(".") if label]
    first = min(len(labels) - 1, TREE_WALK_MAX_LABELS)
    return [".".join(labels[-count:]) for count in range(first, 0, -1)]


async def analyse_dmarc(domain: str, lookup: TxtLookup) -> DmarcAdvice:
    """Advice on the DMARC policy that applies to ``domain``. May raise DnsTemporaryFailure."""
    name = f"_dmarc.{domain}"
    records = dmarc_records(await lookup(name))
    source = name
    inherited = False
    if not records:
        for above in tree_walk_names(domain):
            found = dmarc_records(await lookup(f"_dmarc.{above}"))
            if found:
                records, source, inherited = found, f"_dmarc.{above}", True
                break
    if not records:
        return DmarcAdvice(
            records=(),
            policy=None,
            source="",
            warnings=(f"DMARC: no DMARC record at {name}",),
        )
    warnings: list[str] = []
    if len(records) > 1:
        warnings.append(
            f"DMARC: {source} has {len(records)} DMARC records; receivers ignore DMARC when there"
            " is more than one (RFC 7489 §6.6.3): keep one"
        )
    tags = parse_dmarc(records[0])
    if inherited and tags.get("psd", "").lower() == "y":
        warnings.append(
            f"DMARC: neither {domain} nor its organization publishes a DMARC record; the policy"
            f" of the public suffix at {source} applies: publish your own at {name}"
        )
    policy = tags.get("sp") if inherited and "sp" in tags else tags.get("p")
    if policy is None or policy.lower() not in ("none", "quarantine", "reject"):
        warnings.append(f"DMARC: the record at {source} has no valid p= tag, so it is ignored")
        policy = None
    else:
        policy = policy.lower()
        if policy == "none":
            warnings.append(
                f"DMARC: {source} has p=none: receivers only report, they do not act on failures;"
                " move to p=quarantine once the aggregate reports show your mail passing"
            )
    pct = tags.get("pct")
    if pct is not None and pct != "100" and policy in ("quarantine", "reject"):
        warnings.append(f"DMARC: {source} applies its policy to only pct={pct}% of failing mail")
    if "rua" not in tags:
        warnings.append(f"DMARC: {source} has no rua= address, so no aggregate reports arrive")
    return DmarcAdvice(
        records=tuple(records), policy=policy, source=source, warnings=tuple(warnings)
    )
