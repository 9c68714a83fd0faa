"""Run relaygate's runtime stack under one restriction the systemd units impose.

Used by test_ops_sandbox.py as ``python ops_sandbox_probe.py MODE [SYSCALL,...]``:

- ``mdwe``: W^X as ``MemoryDenyWriteExecute=yes`` (Linux >= 6.3 ``prctl(PR_SET_MDWE)``).
- ``cffi-callback``: the same, then an old-style cffi callback (must be refused).
- ``seccomp``: drop to ``nobody`` (the service never runs as root), then a kill-on-violation
  allow list of exactly the syscalls given (the expansion of the units' SystemCallFilter=).

Prints ``OK <tls version>`` when everything worked, ``UNSUPPORTED ...`` when the kernel or
the Python bindings cannot impose the restriction.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import sys

MODE = sys.argv[1]

# Import everything first: after dropping to ``nobody`` the interpreter may be unreadable.
import asyncio  # noqa: E402
import encodings.idna  # noqa: E402, F401
import select  # noqa: E402
import signal  # noqa: E402
import sqlite3  # noqa: E402
import ssl  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402

import cffi  # noqa: E402
import dkim  # noqa: E402
import jinja2  # noqa: E402
import trustme  # noqa: E402
import uvloop  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa  # noqa: E402

from relaygate.metrics import Metrics  # noqa: E402


def restrict_mdwe() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_mdwe, pr_mdwe_refuse_exec_gain = 65, 1
    if libc.prctl(pr_set_mdwe, pr_mdwe_refuse_exec_gain, 0, 0, 0) != 0:
        print("UNSUPPORTED prctl(PR_SET_MDWE) errno", ctypes.get_errno())
        sys.exit(0)
    try:
        mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    except OSError:
        return
    print("NOT ENFORCED")
    sys.exit(1)


def restrict_seccomp(allowed: list[str]) -> None:
    sys.path.append("/usr/lib/python3/dist-packages")  # Debian's python3-seccomp
    try:
        import seccomp  # type: ignore[import-not-found]
    except ImportError as exc:
        print("UNSUPPORTED python3-seccomp:", exc)
        sys.exit(0)
    if os.geteuid() == 0:
        os.setgroups([])
        os.setgid(65534)
        os.setuid(65534)
    tempfile.tempdir = tempfile.mkdtemp()
    flt = seccomp.SyscallFilter(defaction=seccomp.KILL_PROCESS)
    for name in allowed:
        try:
            flt.add_rule(seccomp.ALLOW, name)
        except (RuntimeError, ValueError, OSError):
            pass  # a name this architecture or libseccomp does not know
    flt.load()


def exercise() -> str:
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
        db.execute("pragma journal_mode=wal")
        db.execute("create table t(x)")
        db.commit()
        db.close()
    assert jinja2.Environment().from_string("{{ n * 2 }}").render(n=21) == "42"
    # what the template renderer does with its workers: a child on pipes, written to, polled,
    # read from, killed and reaped (the worker is Python; the syscalls are the same)
    child = subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert child.stdin is not None and child.stdout is not None
    os.write(child.stdin.fileno(), b"ping")
    assert select.select([child.stdout.fileno()], [], [], 10)[0]
    assert os.read(child.stdout.fileno(), 4) == b"ping"
    child.send_signal(signal.SIGKILL)
    assert child.wait(10) == -signal.SIGKILL
    assert b"relaygate_build_info" in Metrics().render()[0]

    ca = trustme.CA()
    cert = ca.issue_cert("localhost")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)

    async def main() -> str:
        async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            w.write(await r.readline())
            await w.drain()
            w.close()

        srv = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=server_ctx)
        port = srv.sockets[0].getsockname()[1]
        r, w = await asyncio.open_connection(
            "127.0.0.1", port, ssl=client_ctx, server_hostname="localhost"
        )
        version = str(w.get_extra_info("ssl_object").version())
        w.write(b"EHLO x\r\n")
        await w.drain()
        assert await r.readline() == b"EHLO x\r\n"
        w.close()
        srv.close()
        await srv.wait_closed()
        return version

    return uvloop.run(main())


if MODE == "mdwe":
    restrict_mdwe()
elif MODE == "cffi-callback":
    restrict_mdwe()
    try:
        cffi.FFI().callback("int(int)", lambda x: x)
    except MemoryError:
        print("REFUSED")
        sys.exit(0)
    print("ALLOWED")
    sys.exit(1)
elif MODE == "seccomp":
    restrict_seccomp(sys.argv[2].split(","))
else:
    sys.exit(f"unknown mode {MODE}")
print("OK", exercise())
