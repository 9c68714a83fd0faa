"""relaygate.idn: the one domain normaliser (UTS-46, IDNA-2008, A-labels, lower case)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relaygate.idn import address_key, ascii_address, ascii_domain


@pytest.mark.parametrize(
    ("given_", "want"),
    [
        ("straße.de", "xn--strae-oqa.de"),  # IDNA-2008 keeps ß (IDNA-2003 made it strasse.de)
        ("STRASSE.de", "strasse.de"),  # ...which is another domain
        ("Bücher.Example", "xn--bcher-kva.example"),
        ("xn--BCHER-kva.example.", "xn--bcher-kva.example"),
        ("βόλος.com", "xn--nxasmm1c.com"),  # final sigma kept
        ("βόλοσ.com", "xn--nxasmq6b.com"),
        ("ExAmPle.COM", "example.com"),
    ],
)
def test_canonical_domains(given_: str, want: str) -> None:
    assert ascii_domain(given_) == want


@pytest.mark.parametrize("bad", ["", ".", "xn--zz.example", "a\u0000b.example", "-\u00e9.example"])
def test_bad_domains_say_so(bad: str) -> None:
    with pytest.raises(ValueError):
        ascii_domain(bad)


def test_addresses_keep_the_local_part() -> None:
    assert ascii_address("Sup@Bücher.example") == "Sup@xn--bcher-kva.example"
    assert address_key("Sup@Bücher.example") == "sup@xn--bcher-kva.example"
    assert address_key("sup@xn--bcher-kva.example") == address_key("SUP@BÜCHER.EXAMPLE")
    assert ascii_address("δοκιμή@example.com") == "δοκιμή@example.com"  # needs SMTPUTF8
    with pytest.raises(ValueError):
        ascii_address("no-at-sign")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_any_text_is_canonical_or_a_value_error(text: str) -> None:
    try:
        got = ascii_domain(text)
    except ValueError:
        return
    assert got.isascii() and got == got.lower() and ascii_domain(got) == got
