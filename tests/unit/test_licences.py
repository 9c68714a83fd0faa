"""The installed runtime dependency closure of relaygate has no GPL or AGPL licence (API.md §14:
runtime dependencies are permissive or LGPL). Read from the installed packages' metadata with
importlib.metadata: no network; the test extras are not counted.

What a package's metadata says, most precise first: an SPDX ``License-Expression`` (``OR`` gives
a choice, so ``MIT OR GPL-2.0`` is acceptable; ``AND`` needs every part), else its ``License ::``
classifiers (no way to say "or": every one must be acceptable), else the free-text ``License``
field (sometimes the whole licence text). A package that says nothing at all fails: someone has
to read its licence and decide.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from email.message import Message
from importlib import metadata

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

_COPYLEFT_ID = re.compile(r"^A?GPL-", re.IGNORECASE)
_COPYLEFT_TEXT = re.compile(
    r"\bA?GPL|\bGNU\s+(?:Affero\s+)?General\s+Public\s+License", re.IGNORECASE
)
_SPDX_TOKEN = re.compile(r"\(|\)|[^\s()]+")


def runtime_closure(root: str = "relaygate") -> dict[str, metadata.Distribution]:
    """Every distribution ``root`` needs at run time (markers evaluated here; extras only when a
    requirement asks for them), by normalised name."""
    found: dict[str, metadata.Distribution] = {}
    seen: set[tuple[str, frozenset[str]]] = set()
    todo: list[tuple[str, frozenset[str]]] = [(root, frozenset())]
    while todo:
        name, extras = todo.pop()
        key = canonicalize_name(name)
        if (key, extras) in seen:
            continue
        seen.add((key, extras))
        dist = metadata.distribution(name)
        found[key] = dist
        for line in dist.requires or []:
            req = Requirement(line)
            environments = [{"extra": extra} for extra in sorted(extras) or [""]]
            if req.marker is not None and not any(req.marker.evaluate(e) for e in environments):
                continue
            todo.append((req.name, frozenset(req.extras)))
    return found


def _spdx_ok(expression: str) -> bool:
    tokens = _SPDX_TOKEN.findall(expression)
    pos = 0

    def either() -> bool:
        nonlocal pos
        ok = both()
        while pos < len(tokens) and tokens[pos].upper() == "OR":
            pos += 1
            ok = both() or ok
        return ok

    def both() -> bool:
        nonlocal pos
        ok = one()
        while pos < len(tokens) and tokens[pos].upper() == "AND":
            pos += 1
            ok = one() and ok
        return ok

    def one() -> bool:
        nonlocal pos
        if pos >= len(tokens):
            return False
        token = tokens[pos]
        pos += 1
        if token == "(":
            ok = either()
            pos += 1  # ")"
            return ok
        ok = not _COPYLEFT_ID.match(token)
        if pos < len(tokens) and tokens[pos].upper() == "WITH":
            pos += 2  # an exception does not make a GPL acceptable here
        return ok

    return either()


def licence_problem(meta: Message) -> str | None:
    """Why a package's licence is not acceptable for a runtime dependency, or None."""
    expression = meta.get("License-Expression")
    if expression:
        return None if _spdx_ok(expression) else f"licence {expression}"
    classifiers = [
        c.split("::")[-1].strip()
        for c in meta.get_all("Classifier") or []
        if c.startswith("License ::") and c.strip() != "License :: OSI Approved"
    ]
    if classifiers:
        bad = [c for c in classifiers if _COPYLEFT_TEXT.search(c)]
        return f"licence classifier {bad[0]}" if bad else None
    text = (meta.get("License") or "").strip()
    if text:
        return f"licence {text.splitlines()[0][:80]}" if _COPYLEFT_TEXT.search(text) else None
    return "no licence in its metadata"


def _problems() -> Iterator[str]:
    for name, dist in sorted(runtime_closure().items()):
        problem = licence_problem(dist.metadata)  # type: ignore[arg-type]
        if problem is not None:
            yield f"{name} {dist.version}: {problem}"


def test_runtime_dependencies_are_permissive_or_lgpl() -> None:
    closure = runtime_closure()
    assert {"starlette", "uvicorn", "aiosmtpd", "dnspython"} <= set(closure)
    assert "pytest" not in closure and "hypothesis" not in closure  # the test extra
    assert list(_problems()) == []


def _meta(**fields: str | list[str]) -> Message:
    msg = Message()
    for key, value in fields.items():
        for item in [value] if isinstance(value, str) else value:
            msg[key.replace("_", "-")] = item
    return msg


@pytest.mark.parametrize(
    ("fields", "acceptable"),
    [
        ({"License_Expression": "GPL-3.0-or-later"}, False),  # html2text 2025.4.15
        ({"License_Expression": "AGPL-3.0-only"}, False),
        ({"License_Expression": "LGPL-3.0-only"}, True),  # psycopg
        ({"License_Expression": "Apache-2.0 OR BSD-3-Clause"}, True),
        ({"License_Expression": "MIT OR GPL-2.0-or-later"}, True),
        ({"License_Expression": "MIT AND GPL-2.0-only"}, False),
        ({"License_Expression": "(MIT OR GPL-2.0-only) AND BSD-3-Clause"}, True),
        ({"License_Expression": "GPL-2.0-only WITH Classpath-exception-2.0"}, False),
        ({"Classifier": ["License :: OSI Approved :: BSD License"]}, True),  # jinja2 3.1
        (
            {"Classifier": ["License :: OSI Approved :: GNU General Public License v3 (GPLv3)"]},
            False,
        ),
        (
            {
                "Classifier": [
                    "License :: OSI Approved",
                    "License :: OSI Approved :: GNU Lesser General Public License v3 (LGPLv3)",
                ]
            },
            True,
        ),
        (
            {
                "Classifier": [
                    "License :: OSI Approved :: MIT License",
                    "License :: OSI Approved :: GNU Affero General Public License v3",
                ]
            },
            False,
        ),
        ({"License": "BSD-like", "Classifier": ["License :: DFSG approved"]}, True),  # dkimpy
        ({"License": "MIT"}, True),
        ({"License": "GNU GENERAL PUBLIC LICENSE\n   Version 3, 29 June 2007\n..."}, False),
        ({"License": "GNU LESSER GENERAL PUBLIC LICENSE\n   Version 2.1"}, True),
        ({}, False),
    ],
)
def test_licence_reading(fields: dict[str, str | list[str]], acceptable: bool) -> None:
    assert (licence_problem(_meta(**fields)) is None) is acceptable
