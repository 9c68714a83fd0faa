"""The periodic re-check of sending domains (moves them verified ↔ failing, activates keys)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from relaygate.clock import Clock
from relaygate.domains.lookups import Resolver
from relaygate.domains.verify import VerifyReport, verify_domain
from relaygate.settings import Settings
from relaygate.store import Store

log = logging.getLogger("relaygate.domains")

DEFAULT_RECHECK_INTERVAL = 6 * 3600.0


class DomainChecker:
    """Re-checks every domain that has DKIM keys once per ``interval`` (default 6 h).

    ``run_once`` checks the domains whose last check is older than ``interval`` (or all with
    ``force``) and returns their reports; ``run`` loops until ``stop``. Domains added before this
    module existed (no DKIM key) are not re-checked. A check failing unexpectedly is logged and
    skipped; the loop goes on.
    """

    def __init__(
        self,
        store: Store,
        settings: Settings,
        clock: Clock,
        resolver: Resolver,
        interval: float = DEFAULT_RECHECK_INTERVAL,
        *,
        poll: float | None = None,
    ) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        self.store = store
        self.settings = settings
        self.clock = clock
        self.resolver = resolver
        self.interval = interval
        self.poll = poll if poll is not None else min(interval, 60.0)
        self._stopping = asyncio.Event()

    def due(self, *, force: bool = False) -> list[str]:
        now = self.clock.now()
        managed = {k.domain for k in self.store.dkim_keys.all()}
        domains: list[str] = []
        for ident in self.store.identities.domains():
            value = ident.identity.value
            if value not in managed or value in domains:
                continue
            last = ident.last_checked_at
            if force or last is None or now - last >= self.interval:
                domains.append(value)
        return domains

    async def run_once(self, *, force: bool = False) -> list[VerifyReport]:
        reports = []
        for domain in self.due(force=force):
            try:
                reports.append(
                    await verify_domain(
                        self.store, self.settings, domain, self.resolver, clock=self.clock
                    )
                )
            except Exception:
                log.exception("domain check failed", extra={"domain": domain})
        return reports

    async def run(self) -> None:
        self._stopping.clear()
        while not self._stopping.is_set():
            await self.run_once()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=self.poll)

    def stop(self) -> None:
        self._stopping.set()
