from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from relaygate.dkim.keys import (
    DkimError,
    DkimKey,
    DkimKeyError,
    generate_key,
    key_path,
    load_key,
    parse_private_key,
)
from relaygate.errors import PermanentError


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _secrets(path: Path) -> list[str]:
    """Renderings of the private numbers of an RSA key file that no repr or message may show."""
    private = serialization.load_pem_private_key(path.read_bytes(), None)
    assert isinstance(private, rsa.RSAPrivateKey)
    numbers = private.private_numbers()
    lines = path.read_text().splitlines()
    out = lines[-4:-1]  # the tail of PKCS#1 is exponent1, exponent2, coefficient
    for n in (numbers.d, numbers.p, numbers.q):
        out += [str(n)[:40], f"{n:x}"[:40]]
    return out


def test_rsa_key_is_stored_0600_in_a_0700_domain_directory(tmp_path: Path) -> None:
    old = os.umask(0)  # a permissive umask must not loosen anything
    try:
        key = generate_key(tmp_path / "keys", domain="Example.COM", selector="rg1", bits=2048)
    finally:
        os.umask(old)
    assert key.private_path == tmp_path / "keys" / "example.com" / "rg1.rsa.pem"
    assert (key.domain, key.selector, key.algorithm) == ("example.com", "rg1", "rsa")
    assert _mode(key.private_path) == 0o600
    assert _mode(key.private_path.parent) == 0o700
    assert _mode(tmp_path / "keys") == 0o700
    assert os.listdir(key.private_path.parent) == ["rg1.rsa.pem"]  # no temporary file left
    pem = key.private_path.read_bytes()
    assert pem.startswith(b"-----BEGIN RSA PRIVATE KEY-----")  # PKCS#1, as opendkim/dkimpy read
    private = serialization.load_pem_private_key(pem, None)
    assert isinstance(private, rsa.RSAPrivateKey) and private.key_size == 2048
    spki = base64.b64decode(key.public_key_b64)
    public = serialization.load_der_public_key(spki)
    assert public.public_numbers() == private.public_key().public_numbers()  # type: ignore[union-attr]


def test_ed25519_public_key_is_the_raw_32_bytes(tmp_path: Path) -> None:
    key = generate_key(tmp_path, domain="example.com", selector="ed1", algorithm="ed25519")
    assert key.private_path.name == "ed1.ed25519.pem"
    assert _mode(key.private_path) == 0o600
    raw = base64.b64decode(key.public_key_b64)
    assert len(raw) == 32
    private = serialization.load_pem_private_key(key.private_path.read_bytes(), None)
    assert isinstance(private, ed25519.Ed25519PrivateKey)
    assert private.public_key().public_bytes_raw() == raw


def test_the_key_is_never_readable_by_others_while_being_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[int, int]] = []
    real_fsync = os.fsync

    def spy(fd: int) -> None:
        st = os.fstat(fd)
        if stat.S_ISREG(st.st_mode):
            seen.append((stat.S_IMODE(st.st_mode), st.st_size))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", spy)
    old = os.umask(0)
    try:
        generate_key(tmp_path, domain="example.com", selector="s", algorithm="ed25519")
    finally:
        os.umask(old)
    assert seen and all(mode == 0o600 and size > 0 for mode, size in seen)


def test_an_existing_key_is_never_replaced(tmp_path: Path) -> None:
    first = generate_key(tmp_path, domain="example.com", selector="s", algorithm="ed25519")
    before = first.private_path.read_bytes()
    with pytest.raises(DkimKeyError, match="already exists"):
        generate_key(tmp_path, domain="example.com", selector="s", algorithm="ed25519")
    assert first.private_path.read_bytes() == before
    assert os.listdir(first.private_path.parent) == ["s.ed25519.pem"]


def test_load_key_gives_back_the_generated_key(tmp_path: Path) -> None:
    for algorithm, selector in (("rsa", "a.b"), ("ed25519", "c")):
        made = generate_key(
            tmp_path, domain="mail.example.org", selector=selector, algorithm=algorithm, bits=1024
        )  # type: ignore[arg-type]
        assert load_key(made.private_path) == made


def test_load_key_refuses_a_world_readable_file(tmp_path: Path) -> None:
    key = generate_key(tmp_path, domain="example.com", selector="s", algorithm="ed25519")
    key.private_path.chmod(0o644)
    with pytest.raises(DkimKeyError, match="other users"):
        load_key(key.private_path)
    key.private_path.chmod(0o640)  # group-readable (root:relaygate 0640) is accepted
    assert load_key(key.private_path) == key


def test_load_key_refuses_misnamed_mismatched_and_garbage_files(tmp_path: Path) -> None:
    key = generate_key(tmp_path, domain="example.com", selector="s", algorithm="ed25519")
    wrong = key.private_path.with_name("s.rsa.pem")
    os.link(key.private_path, wrong)
    with pytest.raises(DkimKeyError, match="expected an rsa key"):
        load_key(wrong)
    with pytest.raises(DkimKeyError, match="selector"):
        load_key(tmp_path / "example.com" / "s.pem")
    with pytest.raises(DkimKeyError, match="cannot read"):
        load_key(tmp_path / "example.com" / "missing.rsa.pem")
    junk = tmp_path / "example.com" / "junk.rsa.pem"
    fd = os.open(junk, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n")
    os.close(fd)
    with pytest.raises(DkimKeyError, match="not an unencrypted PEM"):
        load_key(junk)


# A throwaway 512-bit key (cryptography refuses to generate one; openssl genrsa 512 made it).
WEAK_PEM = b"""-----BEGIN PRIVATE KEY-----
MIIBVAIBADANBgkqhkiG9w0BAQEFAASCAT4wggE6AgEAAkEAp4z8tuf7tqFQ1M2C
9njKogvpcgPtA6TJYZIj5xGv4xHJAc6Yrghz0FvVQT0RMUNcOsPxvPVDvkqPnBqP
WaYuAQIDAQABAkBQq58ZaYRWIEFM1E4T4YCemOGjFaTONk8HfVdv76IhzyzNwHmC
GzhbL0nJcxW/aojvzzDPVFBz7zfm8pJghAFhAiEA1k9GVoxaeIHOkFeNoj8iKZH4
FiKG10hzZ6Sm7NCARf0CIQDIJRhBVO6fdqpvmQzrM527EeA3dIzl7WGVLvlHasUF
VQIhAJxnTKkbU2eBLJSRIS+YrcDy48CbwBbbrEWml6Ba5lKtAiA+U9b22XUqMbEn
6bitMjjHfeyeOGx8We1OoP8+L1DFtQIgbfn4EfjSBePfomw63tdORYsCzgDvQWQe
/2J8gRpdPl0=
-----END PRIVATE KEY-----
"""


def test_weak_and_unsupported_keys_are_refused_without_quoting_them() -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    with pytest.raises(DkimKeyError, match="512 bits") as info:
        parse_private_key(WEAK_PEM)
    for line in WEAK_PEM.decode().splitlines()[1:-1]:
        assert line not in str(info.value)
    ec_pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(DkimKeyError, match="unsupported") as info:
        parse_private_key(ec_pem)
    assert ec_pem.decode().splitlines()[1] not in str(info.value)
    encrypted = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pw"),
    )
    with pytest.raises(DkimKeyError):
        parse_private_key(encrypted)


def test_dkim_errors_are_permanent() -> None:
    assert issubclass(DkimKeyError, DkimError)
    assert issubclass(DkimError, PermanentError)


def test_repr_holds_no_private_material(tmp_path: Path) -> None:
    key = generate_key(tmp_path, domain="example.com", selector="s", bits=1024)
    text = repr(key) + str(key)
    for secret in _secrets(key.private_path):
        assert secret not in text
    assert "PRIVATE" not in text
    assert set(DkimKey.__dataclass_fields__) == {
        "domain",
        "selector",
        "algorithm",
        "private_path",
        "public_key_b64",
    }


@pytest.mark.parametrize(
    ("domain", "selector"),
    [
        ("../etc", "s"),
        ("example.com/..", "s"),
        ("localhost", "s"),  # not a registrable-looking name: no dot
        ("bücher.example", "s"),  # must be given as an A-label
        ("example.com", "../s"),
        ("example.com", "s;x=1"),
        ("example.com", ""),
        ("example.com", "s/t"),
    ],
)
def test_names_that_are_not_dns_names_are_refused(domain: str, selector: str) -> None:
    with pytest.raises(ValueError):
        key_path(Path("/keys"), domain=domain, selector=selector, algorithm="rsa")


def test_short_rsa_keys_and_unknown_algorithms_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="1024"):
        generate_key(tmp_path, domain="example.com", selector="s", bits=512)
    with pytest.raises(ValueError, match="algorithm"):
        generate_key(tmp_path, domain="example.com", selector="s", algorithm="dsa")  # type: ignore[arg-type]
    assert not (tmp_path / "example.com").exists()
