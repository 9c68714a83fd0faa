"""relaygate's runtime stack works under MemoryDenyWriteExecute (W^X), as the units demand.

systemd enforces ``MemoryDenyWriteExecute=yes`` with a seccomp filter that refuses W+X
mappings. Linux >= 6.3 offers the same policy per process (``prctl(PR_SET_MDWE)``), so a child
interpreter can switch it on and then exercise what relaygate uses: uvloop, a TLS handshake,
RSA/Ed25519 signing (cryptography), DKIM signing (dkimpy), SQLite, Jinja2, prometheus-client.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

PROBE = textwrap.dedent(
    r"""
    import ctypes, mmap, sys
    libc = ctypes.CDLL(None, use_errno=True)
    PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN = 65, 1
    if libc.prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) != 0:
        print("UNSUPPORTED errno", ctypes.get_errno()); sys.exit(0)
    try:
        mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
        print("NOT ENFORCED"); sys.exit(1)
    except OSError:
        pass

    import asyncio, ssl, sqlite3, tempfile, os
    import uvloop, trustme, dkim, jinja2
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
    from relaygate.metrics import Metrics

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert len(key.sign(b"x", padding.PKCS1v15(), hashes.SHA256())) == 256
    ed25519.Ed25519PrivateKey.generate().sign(b"x")
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    msg = b"From: a@example.com\r\nTo: b@example.org\r\nSubject: hi\r\n\r\nbody\r\n"
    sig = dkim.sign(msg, b"s1", b"example.com", pem, include_headers=[b"from", b"to", b"subject"])
    assert sig.startswith(b"DKIM-Signature:")

    with tempfile.TemporaryDirectory() as d:
        db = sqlite3.connect(os.path.join(d, "spool.db"))
        db.execute("pragma journal_mode=wal"); db.execute("create table t(x)"); db.commit()
    assert jinja2.Environment().from_string("{{ n * 2 }}").render(n=21) == "42"
    assert b"relaygate_messages_accepted_total" in Metrics().render()[0]

    ca = trustme.CA()
    cert = ca.issue_cert("localhost")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)

    async def main() -> str:
        async def handle(r, w):
            w.write(await r.readline()); await w.drain(); w.close()
        srv = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=server_ctx)
        port = srv.sockets[0].getsockname()[1]
        r, w = await asyncio.open_connection(
            "127.0.0.1", port, ssl=client_ctx, server_hostname="localhost"
        )
        version = w.get_extra_info("ssl_object").version()
        w.write(b"EHLO x\r\n"); await w.drain()
        assert await r.readline() == b"EHLO x\r\n"
        w.close(); srv.close(); await srv.wait_closed()
        return version

    print("OK", uvloop.run(main()))
    """
)


def test_runtime_stack_under_w_xor_x() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, check=False
    )
    if result.stdout.startswith("UNSUPPORTED"):
        pytest.skip(f"kernel lacks prctl(PR_SET_MDWE) (Linux < 6.3): {result.stdout.strip()}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("OK TLSv1."), result.stdout + result.stderr


def test_the_probe_can_fail_cffi_callbacks_need_w_and_x() -> None:
    """Negative control: the one thing known to need W+X memory is refused in the same setup."""
    probe = PROBE.split("import asyncio", 1)[0] + textwrap.dedent(
        """
        import cffi
        try:
            cffi.FFI().callback("int(int)", lambda x: x)
        except MemoryError:
            print("REFUSED"); sys.exit(0)
        print("ALLOWED")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False
    )
    if result.stdout.startswith("UNSUPPORTED"):
        pytest.skip(f"kernel lacks prctl(PR_SET_MDWE) (Linux < 6.3): {result.stdout.strip()}")
    assert result.stdout.strip() == "REFUSED", result.stdout + result.stderr
