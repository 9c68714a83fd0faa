from __future__ import annotations

import base64
import re
import time
from concurrent.futures import ThreadPoolExecutor
from email.message import EmailMessage
from pathlib import Path

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from hypothesis import given, settings
from hypothesis import strategies as st

from relaygate.clock import FakeClock
from relaygate.dkim.keys import DkimKey, DkimKeyError, generate_key
from relaygate.dkim.signer import DEFAULT_SIGNED_HEADERS, DkimError, DkimSigner, to_crlf
from relaygate.errors import PermanentError

NOW = 1_790_000_000

# RFC 8463 Appendix A: its keys, its message, and the two signatures it publishes.
RFC_RSA_PEM = b"""-----BEGIN RSA PRIVATE KEY-----
MIICXQIBAAKBgQDkHlOQoBTzWRiGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQi
Y/J16JYi0Qvx/byYzCNb3W91y3FutACDfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqM
KrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3Ip3G+2kryOTIKT+l/K4w3QIDAQAB
AoGAH0cxOhFZDgzXWhDhnAJDw5s4roOXN4OhjiXa8W7Y3rhX3FJqmJSPuC8N9vQm
6SVbaLAE4SG5mLMueHlh4KXffEpuLEiNp9Ss3O4YfLiQpbRqE7Tm5SxKjvvQoZZe
zHorimOaChRL2it47iuWxzxSiRMv4c+j70GiWdxXnxe4UoECQQDzJB/0U58W7RZy
6enGVj2kWF732CoWFZWzi1FicudrBFoy63QwcowpoCazKtvZGMNlPWnC7x/6o8Gc
uSe0ga2xAkEA8C7PipPm1/1fTRQvj1o/dDmZp243044ZNyxjg+/OPN0oWCbXIGxy
WvmZbXriOWoSALJTjExEgraHEgnXssuk7QJBALl5ICsYMu6hMxO73gnfNayNgPxd
WFV6Z7ULnKyV7HSVYF0hgYOHjeYe9gaMtiJYoo0zGN+L3AAtNP9huqkWlzECQE1a
licIeVlo1e+qJ6Mgqr0Q7Aa7falZ448ccbSFYEPD6oFxiOl9Y9se9iYHZKKfIcst
o7DUw1/hz2Ck4N5JrgUCQQCyKveNvjzkkd8HjYs0SwM0fPjK16//5qDZ2UiDGnOe
uEzxBDAr518Z8VFbR41in3W4Y3yCDgQlLlcETrS+zYcL
-----END RSA PRIVATE KEY-----
"""
RFC_ED25519_SEED = "nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A="
RFC_MESSAGE = (
    b"From: Joe SixPack <joe@football.example.com>\r\n"
    b"To: Suzie Q <suzie@shopping.example.net>\r\n"
    b"Subject: Is dinner ready?\r\n"
    b"Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)\r\n"
    b"Message-ID: <20030712040037.46341.5F8J@football.example.com>\r\n"
    b"\r\n"
    b"Hi.\r\n"
    b"\r\n"
    b"We lost the game.  Are you hungry yet?\r\n"
    b"\r\n"
    b"Joe.\r\n"
)
RFC_ED25519_B = (
    "/gCrinpcQOoIfuHNQIbq4pgh9kyIK3AQUdt9OdqQehSwhEIug4D11BusFa3bT3FY5OsU7ZbnKELq+eXdp1Q1Dw=="
)
RFC_RSA_B = (
    "F45dVWDfMbQDGHJFlXUNB2HKfbCeLRyhDXgFpEL8GwpsRe0IeIixNTe3DhCVlUrSjV4BwcVcOF6+FF3Zo9Rpo1tF"
    "OeS9mPYQTnGdaSGsgeefOsk2JzdA+L10TeYt9BgDfQNZtKdN1WO//KgIqXP7OdEFE4LjFYNcUxZQ4FADY+8="
)


def _multipart() -> bytes:
    msg = EmailMessage()
    msg["From"] = "Zoë Exämple <zoe@example.com>"
    msg["To"] = "a@example.org, b@example.org"
    msg["Subject"] = "Grüße — a multipart message"
    msg["Message-ID"] = "<m1@example.com>"
    msg.set_content("Hello,\n\ntrailing spaces   \n\n\n")
    msg.add_alternative("<p>Hello</p>", subtype="html")
    msg.add_attachment(b"\x00\x01binary" * 50, maintype="application", subtype="octet-stream")
    return msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))


MESSAGES: dict[str, bytes] = {
    "plain": (
        b"From: A <a@example.com>\r\nTo: b@example.org\r\nSubject: hi\r\n"
        b"Date: Thu, 01 Jan 2026 00:00:00 +0000\r\nMessage-ID: <1@example.com>\r\n"
        b"X-Mailer: relaygate\r\nReceived: from x by y\r\n\r\nHello\r\n"
    ),
    "multipart": _multipart(),
    "utf8_headers": (
        "From: Zoë <zoe@example.com>\r\nTo: Ünal <u@example.org>\r\n"
        "Subject: Grüße, 你好 — ok\r\n\r\nBody with ünïcode\r\n"
    ).encode(),
    "long_folded": (
        b"From: a@example.com\r\nTo: "
        + b",\r\n\t".join(b"user%d@example.org" % i for i in range(40))
        + b"\r\nSubject: "
        + b"word " * 60
        + b"\r\nReferences: "
        + b"\r\n ".join(b"<%d@example.com>" % i for i in range(30))
        + b"\r\n\r\nbody\r\n"
    ),
    "lf_only": b"From: a@example.com\nTo: b@example.org\nSubject: lf\n\nline 1\nline 2\n",
    "no_trailing_crlf": b"From: a@example.com\r\nSubject: x\r\n\r\nno newline at the end",
    "empty_body": b"From: a@example.com\r\nSubject: x\r\n\r\n",
    "headers_only": b"From: a@example.com\r\nSubject: x\r\n",
}


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[DkimKey, DkimKey]:
    directory = tmp_path_factory.mktemp("keys")
    return (
        generate_key(directory, domain="example.com", selector="rg1", bits=2048),
        generate_key(directory, domain="example.com", selector="ed1", algorithm="ed25519"),
    )


@pytest.fixture()
def signer(keys: tuple[DkimKey, DkimKey]) -> DkimSigner:
    return DkimSigner.from_keys(list(keys), clock=FakeClock(NOW))


def _tags(header: bytes) -> dict[str, str]:
    value = header.split(b":", 1)[1].decode()
    return {
        k.strip(): re.sub(r"\s+", " " if k.strip() == "h" else "", v).strip()
        for k, _, v in (part.partition("=") for part in value.split(";"))
    }


def _split(signed: bytes) -> list[bytes]:
    return [b"DKIM-Signature:" + part for part in signed.split(b"DKIM-Signature:")[1:]]


def _h(header: bytes) -> list[str]:
    return [h.strip() for h in _tags(header)["h"].split(":")]


def _dkimpy(
    message: bytes, key: DkimKey, include: list[str], monkeypatch: pytest.MonkeyPatch
) -> bytes:
    """What plain dkimpy makes of the same message, key, header list and time."""
    monkeypatch.setattr(time, "time", lambda: float(NOW))
    pem = key.private_path.read_bytes()
    algorithm = b"rsa-sha256"
    if key.algorithm == "ed25519":
        pytest.importorskip("nacl", reason="pynacl absent: dkimpy needs it to sign with Ed25519")
        private = serialization.load_pem_private_key(pem, None)
        assert isinstance(private, ed25519.Ed25519PrivateKey)
        pem = base64.b64encode(private.private_bytes_raw())
        algorithm = b"ed25519-sha256"
    out: bytes = dkim.sign(
        message,
        key.selector.encode(),
        key.domain.encode(),
        pem,
        canonicalize=(b"relaxed", b"relaxed"),
        signature_algorithm=algorithm,
        include_headers=[h.encode() for h in include],
    )
    return out


@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_rsa_signature_is_byte_identical_to_plain_dkimpy(
    name: str, signer: DkimSigner, keys: tuple[DkimKey, DkimKey], monkeypatch: pytest.MonkeyPatch
) -> None:
    rsa_sig, _ = _split(signer.sign(MESSAGES[name]))
    assert rsa_sig == _dkimpy(MESSAGES[name], keys[0], _h(rsa_sig), monkeypatch)


@pytest.mark.parametrize("name", ["plain", "multipart", "lf_only"])
def test_ed25519_signature_is_byte_identical_to_plain_dkimpy(
    name: str, signer: DkimSigner, keys: tuple[DkimKey, DkimKey], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, ed_sig = _split(signer.sign(MESSAGES[name]))
    assert ed_sig == _dkimpy(MESSAGES[name], keys[1], _h(ed_sig), monkeypatch)


def test_rfc8463_example_signatures_are_reproduced_exactly() -> None:
    seed = base64.b64decode(RFC_ED25519_SEED)
    ed_pem = ed25519.Ed25519PrivateKey.from_private_bytes(seed).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    common = {
        "domain": "football.example.com",
        "oversign": [b"from", b"subject", b"date"],
        "clock": FakeClock(1528637909),
    }
    rsa_sig = DkimSigner(keys=[("test", "rsa", RFC_RSA_PEM)], **common).sign(RFC_MESSAGE)  # type: ignore[arg-type]
    ed_signer = DkimSigner(
        keys=[("test", "rsa", RFC_RSA_PEM), ("brisbane", "ed25519", ed_pem)],
        **common,  # type: ignore[arg-type]
    )
    ed_sig = _split(ed_signer.sign(RFC_MESSAGE))[1]
    for header, b in ((rsa_sig, RFC_RSA_B), (ed_sig, RFC_ED25519_B)):
        tags = _tags(header)
        assert tags["h"] == "from : to : subject : date : message-id : from : subject : date"
        assert tags["bh"] == "2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8="
        assert tags["t"] == "1528637909"
        assert tags["b"] == b


def test_header_shape(signer: DkimSigner) -> None:
    out = signer.sign(MESSAGES["long_folded"])
    assert out.endswith(b"\r\n")
    lines = out[:-2].split(b"\r\n")
    assert sum(line.startswith(b"DKIM-Signature: v=1; a=") for line in lines) == 2
    assert all(line.startswith((b"DKIM-Signature: ", b" ")) for line in lines)
    assert all(len(line) <= 78 for line in lines)
    rsa_sig, ed_sig = _split(out)
    assert _tags(rsa_sig)["a"] == "rsa-sha256" and _tags(ed_sig)["a"] == "ed25519-sha256"
    for sig in (rsa_sig, ed_sig):
        tags = _tags(sig)
        assert tags["c"] == "relaxed/relaxed"
        assert tags["d"] == "example.com"
        assert tags["t"] == str(NOW)
        assert "l" not in tags and "x" not in tags


def test_present_listed_headers_are_signed_in_order_and_from_is_oversigned(
    signer: DkimSigner,
) -> None:
    rsa_sig, ed_sig = _split(signer.sign(MESSAGES["plain"]))
    expected = ["from", "to", "subject", "date", "message-id", "from"]
    assert _h(rsa_sig) == expected and _h(ed_sig) == expected  # no X-Mailer, no Received
    two_to = b"To: c@example.org\r\n" + MESSAGES["plain"]
    assert _h(_split(signer.sign(two_to))[0]) == ["to", *expected[:-1], "from"]


def test_list_unsubscribe_and_mime_headers_are_signed(signer: DkimSigner) -> None:
    message = (
        b"From: a@example.com\r\nList-Unsubscribe: <https://x.example/u>\r\n"
        b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n"
        b"Reply-To: r@example.com\r\nCc: c@example.org\r\nIn-Reply-To: <0@x>\r\n"
        b"Feedback-ID: 1:2:3\r\n\r\nx\r\n"
    )
    assert _h(_split(signer.sign(message))[0]) == [
        "from",
        "list-unsubscribe",
        "list-unsubscribe-post",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
        "reply-to",
        "cc",
        "in-reply-to",
        "feedback-id",
        "from",
    ]


def test_custom_header_list_and_oversigning(keys: tuple[DkimKey, DkimKey]) -> None:
    signer = DkimSigner.from_keys(
        [keys[1], keys[0]],
        headers=[b"From", b"Subject", b"X-Mailer"],
        oversign=[b"From", b"Subject", b"Cc"],
        clock=FakeClock(NOW),
    )
    assert signer.selectors == (("ed1", "ed25519"), ("rg1", "rsa"))
    ed_sig, rsa_sig = _split(signer.sign(MESSAGES["plain"]))  # signatures in key order
    assert _tags(ed_sig)["a"] == "ed25519-sha256"
    assert _h(rsa_sig) == ["from", "subject", "x-mailer", "from", "subject", "cc"]


def test_t_comes_from_the_injected_clock(keys: tuple[DkimKey, DkimKey]) -> None:
    clock = FakeClock(NOW)
    signer = DkimSigner.from_keys([keys[0]], clock=clock)
    first = signer.sign(MESSAGES["plain"])
    assert signer.sign(MESSAGES["plain"]) == first  # deterministic at a fixed time
    clock.advance(3600.7)
    second = signer.sign(MESSAGES["plain"])
    assert _tags(second)["t"] == str(NOW + 3600)
    assert _tags(second)["bh"] == _tags(first)["bh"]
    assert _tags(second)["b"] != _tags(first)["b"]


def test_lf_and_crlf_input_sign_the_same_crlf_message(signer: DkimSigner) -> None:
    lf = MESSAGES["lf_only"]
    assert signer.sign(lf) == signer.sign(to_crlf(lf))
    mixed = b"From: a@example.com\r\nTo: b@example.org\nSubject: lf\r\n\nline 1\nline 2\r\n"
    assert signer.sign(mixed) == signer.sign(lf)


@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_sign_crlf_is_sign_and_to_crlf(signer: DkimSigner, name: str) -> None:
    message = MESSAGES[name]
    header, crlf = signer.sign_crlf(message)
    assert (header, crlf) == (signer.sign(message), to_crlf(message))
    if message.count(b"\n") == message.count(b"\r\n"):
        assert crlf is message  # nothing to convert: the very object, no copy


def test_to_crlf() -> None:
    assert to_crlf(b"a\nb\r\nc\n\n") == b"a\r\nb\r\nc\r\n\r\n"
    assert to_crlf(b"no end") == b"no end"


def test_trailing_empty_lines_do_not_change_the_body_hash(signer: DkimSigner) -> None:
    base = MESSAGES["no_trailing_crlf"]
    bh = {
        _tags(_split(signer.sign(m))[0])["bh"] for m in (base, base + b"\r\n", base + b"\r\n\r\n")
    }
    assert len(bh) == 1


def test_messages_that_cannot_be_signed_raise_dkim_error(signer: DkimSigner) -> None:
    with pytest.raises(DkimError, match="no From"):
        signer.sign(b"To: b@example.org\r\nSubject: x\r\n\r\nbody\r\n")
    with pytest.raises(DkimError, match="header section") as info:
        signer.sign(b"From: a@example.com\r\nsecret header without colon\r\n\r\nbody\r\n")
    assert "secret" not in str(info.value)
    with pytest.raises(DkimError, match="header section"):
        signer.sign(b" a continuation line first\r\nFrom: a@example.com\r\n\r\nbody\r\n")
    assert isinstance(info.value, PermanentError)


def test_the_key_file_is_read_once(tmp_path: Path) -> None:
    key = generate_key(tmp_path, domain="example.com", selector="s", bits=1024)
    signer = DkimSigner(domain="example.com", keys=[("s", "rsa", key.private_path)])
    key.private_path.unlink()
    assert signer.sign(MESSAGES["plain"]).startswith(b"DKIM-Signature: v=1; a=rsa-sha256;")


def test_bad_keys_and_arguments_are_refused(keys: tuple[DkimKey, DkimKey], tmp_path: Path) -> None:
    rsa_key, ed_key = keys
    with pytest.raises(DkimKeyError):
        DkimSigner(domain="example.com", keys=[("s", "rsa", b"not a key")])
    with pytest.raises(DkimKeyError, match="expected an rsa key"):
        DkimSigner(domain="example.com", keys=[("s", "rsa", ed_key.private_path)])
    with pytest.raises(DkimKeyError, match="cannot read"):
        DkimSigner(domain="example.com", keys=[("s", "rsa", tmp_path / "missing.pem")])
    with pytest.raises(TypeError, match="PEM bytes or as a pathlib"):
        DkimSigner(domain="example.com", keys=[("s", "rsa", str(rsa_key.private_path))])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="RSA key"):
        DkimSigner.from_keys([ed_key])
    with pytest.raises(ValueError, match="one key per algorithm"):
        DkimSigner.from_keys([rsa_key, rsa_key])
    with pytest.raises(ValueError, match="From"):
        DkimSigner.from_keys([rsa_key], headers=[b"subject"])
    with pytest.raises(ValueError, match="From"):
        DkimSigner.from_keys([rsa_key], oversign=[b"subject"])
    with pytest.raises(ValueError, match="must not be signed"):
        DkimSigner.from_keys([rsa_key], headers=[*DEFAULT_SIGNED_HEADERS, b"Received"])
    with pytest.raises(ValueError, match="must not be signed"):
        DkimSigner.from_keys([rsa_key], oversign=[b"from", b"DKIM-Signature"])
    with pytest.raises(ValueError):
        DkimSigner(domain="exa mple.com", keys=[("s", "rsa", rsa_key.private_path)])
    with pytest.raises(ValueError):
        DkimSigner(domain="example.com", keys=[("s;x=1", "rsa", rsa_key.private_path)])
    with pytest.raises(ValueError, match="algorithm"):
        DkimSigner(domain="example.com", keys=[("s", "dsa", rsa_key.private_path)])  # type: ignore[list-item]


def test_repr_names_selectors_but_holds_no_key_material(
    signer: DkimSigner, keys: tuple[DkimKey, DkimKey]
) -> None:
    assert repr(signer) == "DkimSigner(domain='example.com', keys=[rg1:rsa, ed1:ed25519])"
    private = serialization.load_pem_private_key(keys[0].private_path.read_bytes(), None)
    numbers = private.private_numbers()  # type: ignore[union-attr]
    state = repr(vars(signer)) + repr(signer._keys)
    for n in (numbers.d, numbers.p, numbers.q):
        assert str(n)[:40] not in state and f"{n:x}"[:40] not in state
    for line in keys[0].private_path.read_text().splitlines()[-4:-1]:
        assert line not in state


def test_concurrent_signing_from_threads_gives_the_sequential_results(signer: DkimSigner) -> None:
    jobs = [MESSAGES[name] for name in sorted(MESSAGES)] * 8
    expected = [signer.sign(m) for m in jobs]
    with ThreadPoolExecutor(max_workers=8) as pool:
        assert list(pool.map(signer.sign, jobs)) == expected


@pytest.mark.parametrize(
    "message",
    [
        *MESSAGES.values(),
        b"",
        b"\r\n\r\nbody",
        b"\nbody\n",
        b"From: a\r\n",
        b"From: a",
        b"From: a\n\n",
        b"From: a\r\n\r\n\r\n",
        b"From: a\r\n folded\r\n\tagain\r\nTo: b\r\n\r\nx\ry\r\n\nz",
        b"From a@b Thu Jan  1 00:00:00 2026\nFrom: a\n\nbody\n",
        b"From: a\r\r\n\r\nbody",
    ],
)
def test_parsing_matches_dkimpy_rfc822_parse(message: bytes) -> None:
    from relaygate.dkim.signer import _parse

    assert _parse(message) == tuple(dkim.rfc822_parse(message))


_WS_BYTES = st.lists(
    st.sampled_from([b"a", b"b", b" ", b"  ", b"\t", b"\r", b"\n", b"\r\n", b"x y", b"\xc3\xa9"]),
    max_size=60,
).map(b"".join)


@settings(max_examples=400, deadline=None)
@given(body=_WS_BYTES)
def test_canonical_body_fast_path_is_dkimpys_relaxed_body(body: bytes) -> None:
    from dkim.canonicalization import CanonicalizationPolicy

    from relaygate.dkim.signer import _canonical_body

    crlf = to_crlf(body)
    policy = CanonicalizationPolicy.from_c_value(b"relaxed/relaxed")
    assert _canonical_body(crlf) == policy.canonicalize_body(crlf)


@settings(max_examples=400, deadline=None)
@given(message=_WS_BYTES)
def test_to_crlf_fast_path_matches_the_substitution(message: bytes) -> None:
    assert to_crlf(message) == re.sub(rb"\r?\n", b"\r\n", message)
