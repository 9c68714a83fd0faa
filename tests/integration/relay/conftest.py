"""Fixtures for the relay integration tests: a test CA, server and client TLS contexts."""

from __future__ import annotations

import ssl

import pytest
import trustme

# Names every sink certificate is valid for (the MX and smarthost names used in the tests).
CERT_NAMES = ("sink.test", "mx1.example.test", "mx2.example.test", "smarthost.test", "127.0.0.1")


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session")
def server_tls(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*CERT_NAMES).configure_cert(ctx)
    return ctx


@pytest.fixture(scope="session")
def client_tls(ca: trustme.CA) -> ssl.SSLContext:
    """A verifying client context that trusts only the test CA."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ca.configure_trust(ctx)
    return ctx


@pytest.fixture(scope="session")
def other_ca_client_tls() -> ssl.SSLContext:
    """A verifying client context that trusts an unrelated CA (verification must fail)."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    trustme.CA().configure_trust(ctx)
    return ctx
