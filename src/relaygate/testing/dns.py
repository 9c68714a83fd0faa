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
no records. A record set is one value or a list of them: a TXT record is a string (or a list of
strings: its character-strings), an MX record ``(preference, host)``, a record of any other type
its zone-file text (``{"SRV": ["10 5 25 mx.example.com."]}``). A value the zone cannot hold
answers SERVFAIL and is kept in ``errors``. Records are answered in zone order. It listens on UDP and TCP on the same ephemeral port of 127.0.0.1 and trusts
nothing it receives: a packet it cannot parse is dropped; an answer over 512 bytes on UDP is sent
truncated (TC, no records) so the client asks again over TCP. The zone can be changed while it
runs (``set``/``remove``).

Built on dnspython, a runtime dependency of relaygate, so it works in a plain install.
"""

from __future__ import annotations

import socket
import socketserver
import threading
from collections.abc import Mapping
from typing import Any

import dns.asyncresolver
import dns.exception
import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.resolver
import dns.rrset
from dns.rdtypes.ANY.TXT import TXT

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
        self.errors: list[Exception] = []
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
    def answer(self, data: bytes, *, max_size: int = 65535) -> bytes | None:
        """The reply packet for one query packet, or None to drop it."""
        try:
            request = dns.message.from_wire(data)
        except Exception:
            return None
        if request.opcode() != dns.opcode.QUERY or len(request.question) != 1:
            return None
        reply = dns.message.make_response(request)
        reply.flags |= dns.flags.AA | dns.flags.RA
        question = request.question[0]
        qtype = dns.rdatatype.to_text(question.rdtype)
        name = _norm(question.name.to_text())
        with self._lock:
            self.queries.append((name, qtype))
            zone = dict(self._zone)
        try:
            if not self._fill(reply, zone, name, qtype):
                return None
        except Exception as exc:  # a zone value it cannot serve
            self.errors.append(exc)
            reply = dns.message.make_response(request)
            reply.set_rcode(dns.rcode.SERVFAIL)
        try:
            return reply.to_wire(max_size=max_size, want_shuffle=False)
        except dns.exception.TooBig:
            reply.answer = []
            reply.flags |= dns.flags.TC
            return reply.to_wire(want_shuffle=False)

    def _fill(
        self, reply: dns.message.Message, zone: Mapping[str, ZoneEntry], name: str, qtype: str
    ) -> bool:
        """Add the answer for ``name``/``qtype`` to ``reply``; False to drop the query."""
        seen = 0
        while True:
            entry = zone.get(name)
            if entry is None:
                if seen == 0:
                    reply.set_rcode(dns.rcode.NXDOMAIN)
                return True
            if entry == "SERVFAIL":
                reply.set_rcode(dns.rcode.SERVFAIL)
                return True
            if entry == "TIMEOUT":
                return False
            assert isinstance(entry, Mapping)
            if qtype != "CNAME" and "CNAME" in entry:
                target = _norm(str(entry["CNAME"]))
                reply.answer.append(
                    dns.rrset.from_rdata(name + ".", self.ttl, _rdata("CNAME", target))
                )
                name = target
                seen += 1
                if seen > 8:
                    return True
                continue
            values = entry.get(qtype)
            if values == "SERVFAIL":
                reply.set_rcode(dns.rcode.SERVFAIL)
                return True
            if values == "TIMEOUT":
                return False
            if values is None:
                return True
            if (
                not isinstance(values, list | tuple)
                or qtype == "CNAME"
                or (qtype == "MX" and values and not isinstance(values[0], list | tuple))
            ):
                values = [values]
            rdatas = [_rdata(qtype, value) for value in values]
            reply.answer.append(dns.rrset.from_rdata_list(name + ".", self.ttl, rdatas))
            return True

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> tuple[str, int]:
        owner = self

        class UDPHandler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                data, sock = self.request
                out = owner.answer(data, max_size=512)
                if out is not None:
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


def _rdata(qtype: str, value: Any) -> dns.rdata.Rdata:
    rdclass, rdtype = dns.rdataclass.IN, dns.rdatatype.from_text(qtype)
    if qtype == "MX":
        pref, host = value
        return dns.rdata.from_text(rdclass, rdtype, f"{int(pref)} {str(host).rstrip('.')}.")
    if qtype == "TXT":
        parts = [value] if isinstance(value, str | bytes) else list(value)
        return TXT(rdclass, rdtype, [p.encode() if isinstance(p, str) else p for p in parts])
    if qtype == "CNAME":
        return dns.rdata.from_text(rdclass, rdtype, str(value).rstrip(".") + ".")
    return dns.rdata.from_text(rdclass, rdtype, str(value))
