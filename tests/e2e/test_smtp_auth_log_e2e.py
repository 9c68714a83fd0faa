"""`relaygate serve` at log_level = "debug": a client whose AUTH is refused and whose key then
arrives as commands leaves no trace of the key in the service's log (issue 15 item 6)."""

from __future__ import annotations

import base64
import socket
from pathlib import Path

import httpx

from relaygate.testing.process import RelaygateProcess


def replies(sock: socket.socket, n: int) -> list[bytes]:
    data = b""
    while data.count(b"\r\n") < n:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data.split(b"\r\n")[:n]


def test_the_key_of_a_refused_auth_login_is_not_in_the_service_log(tmp_path: Path) -> None:
    rg = RelaygateProcess(tmp_path, top_extra={"log_level": "debug"})
    rg.init()
    rg.cli("account", "create", "acme", "--plan", "paid")
    key: str = rg.cli("key", "create", "--account", "1", "--scope", "email:send")["key"]
    encoded = base64.b64encode(key.encode())
    with rg:
        host, port = rg.smtp_addresses[0]
        with socket.create_connection((host, port), timeout=10) as sock:
            assert replies(sock, 1)[0].startswith(b"220 ")
            # AUTH LOGIN before EHLO (503), the client's answers pipelined behind it; then the
            # key itself as a command, as it is and upper-cased.
            sock.sendall(
                b"AUTH LOGIN\r\n" + base64.b64encode(b"apikey") + b"\r\n" + encoded + b"\r\n"
            )
            sock.sendall(key.encode() + b"\r\n" + key.upper().encode() + b"\r\nQUIT\r\n")
            got = replies(sock, 6)
        assert [r[:4] for r in got] == [b"503 ", b"500 ", b"500 ", b"500 ", b"500 ", b"221 "]
        assert httpx.get(f"{rg.http_url}/healthz").status_code == 200
    log = rg.log_path.read_text().lower()
    assert '"logger":"mail.log"' in log  # aiosmtpd's warnings about the lines are there...
    for secret in (key, encoded.decode()):
        assert secret.lower()[8:20] not in log  # ...without any piece of the key
