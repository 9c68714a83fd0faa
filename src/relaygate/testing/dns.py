"""A real DNS server on loopback that serves a zone given as a dict (for tests and users' tests).

    zone = {
        "example.com": {"MX": [(10, "mx1.example.com")], "TXT": ["v=spf1 -all"]},
        "mx1.example.com": {"A": ["127.0.0.1"], "AAAA": ["::1"]},
        "alias.example.com": {"CNAME": "example.com"},
        "broken.example": "SERVFAIL",        # every query for the name answers SERVFAIL
        "slow.example": {"MX": "TIMEOUT"},   # MX queries are dropped (the client times out)
    }
    with DNSServer(zone) as dns:
        resolver = dns.resolver()            # a dnspython resolver pointed only at this server

Names not in the zone answer NXDOMAIN; a known name without the asked type answers NOERROR with
no records. TXT values are a string or a list of strings (the character-strings of one record).
It listens on UDP and TCP on the same ephemeral port of 127.0.0.1 and trusts nothing it receives:
a packet it cannot parse is dropped. The zone can be changed while it runs (``set``/``remove``).
"""

from __future__ import annotations

import socket
import socketserver
import threading
from collections.abc import Mapping
from typing import Any

import dns.asyncresolver
import dns.resolver
from dnslib import AAAA, CNAME, MX, QTYPE, RCODE, RR, TXT, A, DNSRecord

ZoneEntry = str | Mapping[str, Any]


def _norm(name: str) -> str:
    return name.rstrip(".").lower()


class DNSServer:
    """Serves ``zone`` on 127.0.0.1 over UDP and TCP until ``stop()``."""

    def __init__(self, zone: Mapping[str, ZoneEntry] | None = None, *, ttl: int = 60) -> None:
        self._lock = threading.Lock()
        self._zone: dict[str, ZoneEntry] = {}
        for name, entry in (zone or {}).items():
            self._zone[_norm(name)] = entry
        self.ttl = ttl
        self.host = "127.0.0.1"
        self.port = 0
        self.queries: list[tuple[str, str]] = []
        self._servers: list[socketserver.BaseServer] = []
        self._threads: list[threading.Thread] = []

    # -- zone editing -------------------------------------------------------------------------
    def set(self, name: str, rtype: str | None = None, value: Any = None) -> None:
        """Replace one record set (``rtype``) of ``name``, or the whole entry when rtype is None."""
        with self._lock:
            key = _norm(name)
            if rtype is None:
                self._zone[key] = value
                return
            current = self._zone.get(key)
            entry = dict(current) if isinstance(current, Mapping) else {}
            entry[rtype.upper()] = value
            self._zone[key] = entry

    def remove(self, name: str, rtype: str | None = None) -> None:
        with self._lock:
            key = _norm(name)
            if rtype is None:
                self._zone.pop(key, None)
                return
            current = self._zone.get(key)
            if isinstance(current, Mapping):
                entry = dict(current)
                entry.pop(rtype.upper(), None)
                self._zone[key] = entry

    # -- answering ------------------------------------------------------------------------------
    def answer(self, data: bytes) -> bytes | None:
        """The reply packet for one query packet, or None to drop it."""
        try:
            request = DNSRecord.parse(data)
        except Exception:
            return None
        reply = request.reply()
        qname = str(request.q.qname)
        qtype = QTYPE.get(request.q.qtype, str(request.q.qtype))
        with self._lock:
            self.queries.append((_norm(qname), str(qtype)))
            zone = dict(self._zone)
        name = _norm(qname)
        seen = 0
        while True:
            entry = zone.get(name)
            if entry is None:
                if seen == 0:
                    reply.header.rcode = RCODE.NXDOMAIN
                break
            if entry == "SERVFAIL":
                reply.header.rcode = RCODE.SERVFAIL
                return bytes(reply.pack())
            if entry == "TIMEOUT":
                return None
            assert isinstance(entry, Mapping)
            if qtype != "CNAME" and "CNAME" in entry:
                target = str(entry["CNAME"])
                reply.add_answer(
                    RR(name + ".", QTYPE.CNAME, rdata=CNAME(target + "."), ttl=self.ttl)
                )
                name = _norm(target)
                seen += 1
                if seen > 8:
                    break
                continue
            values = entry.get(qtype)
            if values == "SERVFAIL":
                reply.header.rcode = RCODE.SERVFAIL
                return bytes(reply.pack())
            if values == "TIMEOUT":
                return None
            if values is None:
                break
            if not isinstance(values, list | tuple) or qtype == "CNAME":
                values = [values]
            for value in values:
                reply.add_answer(
                    RR(name + ".", getattr(QTYPE, qtype), rdata=_rdata(qtype, value), ttl=self.ttl)
                )
            break
        return bytes(reply.pack())

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> tuple[str, int]:
        owner = self

        class UDPHandler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                data, sock = self.request
                out = owner.answer(data)
                if out is not None:
                    if len(out) > 512:
                        parsed = DNSRecord.parse(out)
                        parsed.rr = []
                        parsed.header.tc = 1
                        out = parsed.pack()
                    sock.sendto(out, self.client_address)

        class TCPHandler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                conn: socket.socket = self.request
                conn.settimeout(5)
                try:
                    head = conn.recv(2)
                    if len(head) < 2:
                        return
                    size = int.from_bytes(head, "big")
                    data = b""
                    while len(data) < size:
                        chunk = conn.recv(size - len(data))
                        if not chunk:
                            return
                        data += chunk
                    out = owner.answer(data)
                    if out is not None:
                        conn.sendall(len(out).to_bytes(2, "big") + out)
                except OSError:
                    return

        class UDP(socketserver.ThreadingUDPServer):
            daemon_threads = True
            allow_reuse_address = True

        class TCP(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        for _ in range(20):
            udp = UDP((self.host, 0), UDPHandler)
            port = udp.server_address[1]
            try:
                tcp = TCP((self.host, port), TCPHandler)
            except OSError:
                udp.server_close()
                continue
            break
        else:  # pragma: no cover - would need 20 port collisions in a row
            raise OSError("could not bind UDP and TCP on one port")
        self.port = port
        self._servers = [udp, tcp]
        for server in self._servers:
            thread = threading.Thread(
                target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
            )
            thread.start()
            self._threads.append(thread)
        return self.host, self.port

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
        self._servers = []
        self._threads = []

    def __enter__(self) -> DNSServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def nameserver(self) -> str:
        """``host:port``, the form ``[dns] nameservers`` takes."""
        return f"{self.host}:{self.port}"

    def resolver(self, *, timeout: float = 2.0) -> dns.resolver.Resolver:
        """A synchronous dnspython resolver that asks only this server (never the system's)."""
        res = dns.resolver.Resolver(configure=False)
        res.nameservers = [self.host]
        res.port = self.port
        res.timeout = res.lifetime = timeout
        return res

    def async_resolver(self, *, timeout: float = 2.0) -> dns.asyncresolver.Resolver:
        res = dns.asyncresolver.Resolver(configure=False)
        res.nameservers = [self.host]
        res.port = self.port
        res.timeout = res.lifetime = timeout
        return res


def _rdata(qtype: str, value: Any) -> Any:
    if qtype == "A":
        return A(str(value))
    if qtype == "AAAA":
        return AAAA(str(value))
    if qtype == "MX":
        pref, host = value
        return MX(str(host).rstrip(".") + ".", int(pref))
    if qtype == "TXT":
        parts = [value] if isinstance(value, str | bytes) else list(value)
        return TXT([p.encode() if isinstance(p, str) else p for p in parts])
    if qtype == "CNAME":
        return CNAME(str(value).rstrip(".") + ".")
    raise ValueError(f"unsupported record type {qtype}")
