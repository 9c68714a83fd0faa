"""Who the dashboard's client is: the peer, or — when the peer is one of ``[http]
trusted_proxies`` — the address the proxy says it saw (X-Forwarded-For), and whether that
client may reach the dashboard at all (``[dashboard] allow_from``).

Trust: X-Forwarded-For is stranger-controlled text. It is read only when the peer is a trusted
proxy, and then from the right: the first address that is not itself a trusted proxy is the
client (everything to its left could have been written by the client).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

__all__ = ["Networks", "client_address"]

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class Networks:
    """A list of CIDRs (from the settings) and a membership test that never raises."""

    def __init__(self, cidrs: Sequence[str]) -> None:
        self.networks: tuple[IPNetwork, ...] = tuple(
            ipaddress.ip_network(c, strict=False) for c in cidrs
        )

    def __bool__(self) -> bool:
        return bool(self.networks)

    def __contains__(self, address: object) -> bool:
        if not isinstance(address, str):
            return False
        try:
            ip = ipaddress.ip_address(address.strip().partition("%")[0])
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in n for n in self.networks)


def client_address(peer: str, forwarded_for: str | None, trusted: Networks) -> str:
    """The client's address: ``peer``, or the right-most untrusted X-Forwarded-For entry when
    ``peer`` is a trusted proxy."""
    if not forwarded_for or peer not in trusted:
        return peer
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    for hop in reversed(hops):
        if hop not in trusted:
            try:
                return str(ipaddress.ip_address(hop.partition("%")[0]))
            except ValueError:
                return peer  # garbage from the proxy's side: trust only the peer
    return hops[0] if hops else peer
