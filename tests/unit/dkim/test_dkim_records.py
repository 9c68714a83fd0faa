from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from relaygate.dkim.keys import DkimKey, public_key_b64
from relaygate.dkim.records import (
    dkim_txt_value,
    dns_name,
    record_matches,
    split_txt,
    zone_file_line,
)


@pytest.fixture(scope="module")
def rsa2048() -> DkimKey:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return DkimKey(
        domain="example.com",
        selector="rg2026",
        algorithm="rsa",
        private_path=Path("/nonexistent/example.com/rg2026.rsa.pem"),
        public_key_b64=public_key_b64(private),
    )


ED = DkimKey(
    domain="example.com",
    selector="ed.2026",
    algorithm="ed25519",
    private_path=Path("/nonexistent/example.com/ed.2026.ed25519.pem"),
    public_key_b64="11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=",
)


def test_dns_name_is_selector_domainkey_domain() -> None:
    assert dns_name(ED) == "ed.2026._domainkey.example.com"


def test_txt_values_name_the_key_type(rsa2048: DkimKey) -> None:
    assert dkim_txt_value(rsa2048) == f"v=DKIM1; k=rsa; p={rsa2048.public_key_b64}"
    assert (
        dkim_txt_value(ED) == "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
    )


def test_a_2048_bit_value_is_split_into_strings_of_at_most_255_bytes(rsa2048: DkimKey) -> None:
    value = dkim_txt_value(rsa2048)
    assert len(value) > 255
    parts = split_txt(value)
    assert len(parts) == 2
    assert all(len(p.encode()) <= 255 for p in parts)
    assert len(parts[0]) == 255
    assert "".join(parts) == value


def test_a_short_value_is_one_string() -> None:
    assert split_txt(dkim_txt_value(ED)) == [dkim_txt_value(ED)]
    assert split_txt("") == [""]


def test_split_counts_bytes_and_never_cuts_a_character() -> None:
    value = "é" * 200  # 400 bytes
    parts = split_txt(value)
    assert [len(p.encode()) for p in parts] == [254, 146]
    assert "".join(parts) == value
    assert split_txt("abcdefg", limit=3) == ["abc", "def", "g"]


@pytest.mark.parametrize("limit", [0, 256, -1])
def test_split_refuses_impossible_limits(limit: int) -> None:
    with pytest.raises(ValueError):
        split_txt("abc", limit=limit)


def test_zone_file_line_quotes_each_string(rsa2048: DkimKey) -> None:
    line = zone_file_line(rsa2048, ttl=300)
    parts = split_txt(dkim_txt_value(rsa2048))
    assert line == f'rg2026._domainkey.example.com. 300 IN TXT "{parts[0]}" "{parts[1]}"'
    assert "\n" not in line


def test_zone_file_line_escapes_quotes_and_backslashes() -> None:
    odd = DkimKey(
        domain="example.com",
        selector="s",
        algorithm="rsa",
        private_path=Path("/x"),
        public_key_b64='a"b\\c',
    )
    assert zone_file_line(odd).endswith(' 3600 IN TXT "v=DKIM1; k=rsa; p=a\\"b\\\\c"')
    with pytest.raises(ValueError):
        zone_file_line(odd, ttl=-1)


def test_record_matches_the_published_forms_of_the_key(rsa2048: DkimKey) -> None:
    p = rsa2048.public_key_b64
    assert record_matches(dkim_txt_value(rsa2048), rsa2048)
    assert record_matches("".join(split_txt(dkim_txt_value(rsa2048))), rsa2048)
    assert record_matches(f"p={p[:100]} {p[100:]} ; k=rsa;v=DKIM1;", rsa2048)
    assert record_matches(f"p={p}", rsa2048)  # k= defaults to rsa, v= is optional
    assert record_matches(dkim_txt_value(ED), ED)


def test_record_matches_rejects_other_keys_and_junk(rsa2048: DkimKey) -> None:
    p = rsa2048.public_key_b64
    assert not record_matches(dkim_txt_value(ED), rsa2048)
    assert not record_matches(f"v=DKIM1; k=rsa; p={p[:-4]}AAA=", rsa2048)
    assert not record_matches(f"v=DKIM1; k=ed25519; p={p}", rsa2048)
    assert not record_matches(f"v=DKIM2; k=rsa; p={p}", rsa2048)
    assert not record_matches(f"p={ED.public_key_b64}", ED)  # k= defaults to rsa
    assert not record_matches("v=DKIM1; k=rsa; p=", rsa2048)  # revoked
    assert not record_matches(f"v=DKIM1; garbage; p={p}", rsa2048)
    assert not record_matches("relaygate-verification=abc", rsa2048)
