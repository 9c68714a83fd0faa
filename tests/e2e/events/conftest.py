"""Network rule guard for the webhook end-to-end tests: every socket address lookup (anyio, hence
httpx, looks up even IP literals before connecting) must be a loopback IP literal."""

from __future__ import annotations

import ipaddress
import socket

import pytest


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    real = socket.getaddrinfo

    def guarded(host, *args, **kwargs):  # type: ignore[no-untyped-def]
        text = host.decode() if isinstance(host, bytes) else str(host)
        try:
            ok = ipaddress.ip_address(text.split("%")[0]).is_loopback
        except ValueError:
            ok = False
        if not ok:
            raise socket.gaierror(socket.EAI_NONAME, f"test guard: {text!r} is not a loopback IP")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", guarded)
