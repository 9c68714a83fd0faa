"""Signatures made by DkimSigner verified by dkimpy and by Perl Mail::DKIM over loopback DNS."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from pathlib import Path

import dkim
import pytest

from relaygate.clock import SystemClock
from relaygate.dkim.keys import DkimKey, generate_key
from relaygate.dkim.records import dkim_txt_value, dns_name, split_txt
from relaygate.dkim.signer import DkimSigner, to_crlf
from relaygate.testing.dns import DNSServer

PERL_SCRIPT = Path(__file__).with_name("dkim_verify.pl")


def _multipart() -> bytes:
    msg = EmailMessage()
    msg["From"] = "Zoë Exämple <zoe@example.com>"
    msg["To"] = "a@example.org"
    msg["Subject"] = "Grüße — multipart/mixed with an attachment"
    msg["Message-ID"] = "<mp@example.com>"
    msg.set_content("Hello,\n\ntrailing spaces   \n.\nA line that is a dot\n\n\n")
    msg.add_alternative("<p>Hello <b>there</b></p>", subtype="html")
    msg.add_attachment(bytes(range(256)) * 20, maintype="application", subtype="octet-stream")
    return msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))


MESSAGES: dict[str, bytes] = {
    "plain": (
        b"From: A <a@example.com>\r\nTo: b@example.org\r\nSubject: hi\r\n"
        b"Date: Thu, 01 Jan 2026 00:00:00 +0000\r\nMessage-ID: <1@example.com>\r\n"
        b"List-Unsubscribe: <https://example.com/u/1>\r\n"
        b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n\r\nHello\r\n"
    ),
    "multipart": _multipart(),
    "utf8_headers": (
        "From: Zoë <zoe@example.com>\r\nTo: Ünal <u@example.org>\r\n"
        "Subject: Grüße, 你好 — raw UTF-8 (SMTPUTF8)\r\n"
        "Reply-To: =?utf-8?q?Z=C3=B6e?= <r@example.com>\r\n\r\nBody with ünïcode\r\n"
    ).encode(),
    "long_folded": (
        b"From: a@example.com\r\nTo: "
        + b",\r\n\t".join(b"user%d@example.org" % i for i in range(40))
        + b"\r\nSubject: "
        + b"word   " * 60
        + b"\r\nReferences: "
        + b"\r\n ".join(b"<%d@example.com>" % i for i in range(30))
        + b"\r\n\r\nbody  with   spaces \t\r\n\r\n\r\n"
    ),
    "lf_only": b"From: a@example.com\nTo: b@example.org\nSubject: lf\n\nline 1\nline 2\n",
    "no_trailing_crlf": b"From: a@example.com\r\nSubject: x\r\n\r\nno newline at the end",
    "trailing_crlf": b"From: a@example.com\r\nSubject: x\r\n\r\nnewline at the end\r\n",
}


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[DkimKey, DkimKey]:
    directory = tmp_path_factory.mktemp("dkimkeys")
    return (
        generate_key(directory, domain="example.com", selector="rg2026", bits=2048),
        generate_key(directory, domain="example.com", selector="ed2026", algorithm="ed25519"),
    )


@pytest.fixture(scope="module")
def dns(keys: tuple[DkimKey, DkimKey]) -> Iterator[DNSServer]:
    zone = {dns_name(k): {"TXT": [split_txt(dkim_txt_value(k))]} for k in keys}
    with DNSServer(zone) as server:
        yield server


@pytest.fixture(scope="module")
def signer(keys: tuple[DkimKey, DkimKey]) -> DkimSigner:
    return DkimSigner.from_keys(list(keys), clock=SystemClock())


@pytest.fixture(scope="module")
def dnsfunc(dns: DNSServer) -> Callable[..., bytes]:
    resolver = dns.resolver()

    def get_txt(name: bytes, timeout: float = 5) -> bytes:
        answer = resolver.resolve(name.decode(), "TXT")
        return b"".join(answer[0].strings)

    return get_txt


def _signed(signer: DkimSigner, message: bytes) -> bytes:
    """What the relay would send: the signature(s), then the message with CRLF line endings."""
    return signer.sign(message) + to_crlf(message)


def _dkimpy(message: bytes, dnsfunc: Callable[..., bytes]) -> list[bool]:
    """dkimpy's verdict on each signature (RSA first, then Ed25519 when PyNaCl is present)."""
    checker = dkim.DKIM(message)
    count = 1
    try:
        import nacl  # noqa: F401
    except ImportError:
        pass  # dkimpy cannot verify Ed25519 without PyNaCl; the RFC 8463 unit test covers it
    else:
        count = 2
    verdicts = []
    for i in range(count):
        try:
            verdicts.append(bool(checker.verify(idx=i, dnsfunc=dnsfunc)))
        except dkim.ValidationError:  # e.g. body hash mismatch; dkim.verify() maps it to False
            verdicts.append(False)
    return verdicts


@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_dkimpy_verifies_what_we_sign(
    name: str, signer: DkimSigner, dnsfunc: Callable[..., bytes], dns: DNSServer
) -> None:
    assert all(_dkimpy(_signed(signer, MESSAGES[name]), dnsfunc))
    assert ("rg2026._domainkey.example.com", "TXT") in dns.queries


def test_dkimpy_verifies_ed25519(signer: DkimSigner, dnsfunc: Callable[..., bytes]) -> None:
    pytest.importorskip("nacl", reason="pynacl absent: dkimpy needs it to verify Ed25519")
    assert _dkimpy(_signed(signer, MESSAGES["plain"]), dnsfunc) == [True, True]


def _tamperings() -> dict[str, Callable[[bytes], bytes]]:
    return {
        "body changed": lambda m: m.replace(b"Hello", b"Hellp"),
        "line appended": lambda m: m + b"P.S.\r\n",
        "subject changed": lambda m: m.replace(b"Subject: hi", b"Subject: Hi"),
        "second From added": lambda m: m.replace(b"\r\nTo: ", b"\r\nFrom: m@evil.example\r\nTo: "),
    }


def _harmless() -> dict[str, Callable[[bytes], bytes]]:
    return {
        "Received added": lambda m: b"Received: from relay by mx; Thu, 1 Jan 2026\r\n" + m,
        "refolded header": lambda m: m.replace(b"Subject: hi", b"Subject:\r\n\t  hi"),
        "trailing blank lines": lambda m: m + b"\r\n\r\n",
    }


@pytest.mark.parametrize("how", sorted(_tamperings()))
def test_dkimpy_rejects_tampering(
    how: str, signer: DkimSigner, dnsfunc: Callable[..., bytes]
) -> None:
    tampered = _tamperings()[how](_signed(signer, MESSAGES["plain"]))
    assert not any(_dkimpy(tampered, dnsfunc))


@pytest.mark.parametrize("how", sorted(_harmless()))
def test_dkimpy_accepts_what_relaxed_canonicalisation_allows(
    how: str, signer: DkimSigner, dnsfunc: Callable[..., bytes]
) -> None:
    assert all(_dkimpy(_harmless()[how](_signed(signer, MESSAGES["plain"])), dnsfunc))


# --- Perl Mail::DKIM: an implementation that shares no code with dkimpy ------------------------


def _mail_dkim_available() -> bool:
    try:
        done = subprocess.run(
            ["perl", "-MMail::DKIM::Verifier", "-e1"], capture_output=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


needs_mail_dkim = pytest.mark.skipif(
    not _mail_dkim_available(),
    reason="Perl Mail::DKIM is not installed (Debian: apt-get install libmail-dkim-perl)",
)


def _mail_dkim(message: bytes, dns: DNSServer) -> dict[str, tuple[str, str]]:
    """Mail::DKIM's result per algorithm: {"rsa-sha256": ("pass", detail), ...}."""
    done = subprocess.run(
        ["perl", str(PERL_SCRIPT), str(dns.port)],
        input=message,
        capture_output=True,
        timeout=60,
        check=True,
    )
    results: dict[str, tuple[str, str]] = {}
    for line in done.stdout.decode().splitlines():
        result, algorithm, *rest = line.split(" ", 3)
        if result not in ("overall", "version"):
            results[algorithm] = (result, rest[-1] if len(rest) == 2 else "")
    return results


def _ed25519_ok(result: tuple[str, str]) -> bool:
    # Mail::DKIM before 1.20230630 has no Ed25519: it calls the signature "invalid (unsupported
    # algorithm ed25519-sha256)". A version that does support it must say "pass".
    return result[0] == "pass" or "unsupported algorithm" in result[1]


@needs_mail_dkim
@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_mail_dkim_verifies_what_we_sign(name: str, signer: DkimSigner, dns: DNSServer) -> None:
    results = _mail_dkim(_signed(signer, MESSAGES[name]), dns)
    assert results["rsa-sha256"] == ("pass", "pass")
    assert _ed25519_ok(results["ed25519-sha256"]), results


@needs_mail_dkim
@pytest.mark.parametrize("how", sorted(_tamperings()))
def test_mail_dkim_rejects_tampering(how: str, signer: DkimSigner, dns: DNSServer) -> None:
    tampered = _tamperings()[how](_signed(signer, MESSAGES["plain"]))
    results = _mail_dkim(tampered, dns)
    assert results["rsa-sha256"][0] == "fail", results
    assert results["ed25519-sha256"][0] != "pass"


@needs_mail_dkim
@pytest.mark.parametrize("how", sorted(_harmless()))
def test_mail_dkim_accepts_what_relaxed_canonicalisation_allows(
    how: str, signer: DkimSigner, dns: DNSServer
) -> None:
    results = _mail_dkim(_harmless()[how](_signed(signer, MESSAGES["plain"])), dns)
    assert results["rsa-sha256"] == ("pass", "pass")
