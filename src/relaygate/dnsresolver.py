"""The one factory for dnspython resolvers: ``[dns] nameservers`` from the settings.

With nameservers configured (always, in tests) the resolver never reads the system's
resolv.conf; without them it uses the system configuration (production default).
"""

from __future__ import annotations

import dns.asyncresolver

from relaygate.settings import Settings


def make_resolver(settings: Settings) -> dns.asyncresolver.Resolver:
    servers = settings.dns.nameservers
    if not servers:
        res = dns.asyncresolver.Resolver(configure=True)
    else:
        res = dns.asyncresolver.Resolver(configure=False)
        res.nameservers = [host for host, _ in servers]
        res.port = servers[0][1]
        if len({port for _, port in servers}) > 1:
            res.nameserver_ports = {host: port for host, port in servers}
    res.timeout = settings.dns.timeout
    res.lifetime = settings.dns.timeout
    return res
