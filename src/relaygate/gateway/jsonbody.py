"""What every JSON request body must be before any of its fields is read.

Owns two rules, each a 400 whose ``detail`` names the field (``variables.user.name``,
``tags[0]``):

* text is valid Unicode: JSON's ``\\uD800`` escapes can carry a lone surrogate, which no encoder
  downstream (MIME, SQLite, our own JSON answers) can write — in a value or in a key;
* nesting is at most ``MAX_DEPTH`` levels (the body itself is level 0): deeper data only
  serves to exhaust the recursion of whatever walks it later.

Trust: the body is a stranger's, already parsed by ``json.loads``. The walk is iterative and
linear in the body's size; ASCII strings cost nothing (``str.isascii`` is a flag).
"""

from __future__ import annotations

from typing import Any

from relaygate.errors import RequestError

__all__ = ["MAX_DEPTH", "check_body"]

MAX_DEPTH = 64

# (value, depth, parent entry, key or index in the parent): paths are spelled only on error
_Entry = tuple[Any, int, "_Entry | None", "str | int | None"]


def _shown(text: str) -> str:
    """``text`` safe to echo: surrogates and other unencodable points as ``\\udXXX`` escapes."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _path(entry: _Entry) -> str:
    keys: list[str | int] = []
    node: _Entry | None = entry
    while node is not None and node[3] is not None:
        keys.append(node[3])
        node = node[2]
    path = ""
    for key in reversed(keys):
        if isinstance(key, int):
            path += f"[{key}]"
        else:
            path += f".{_shown(key)}" if path else _shown(key)
    return path or "request body"


def _lone_surrogate(text: str) -> tuple[int, int] | None:
    """(position, code point) of the first lone surrogate in ``text``, or None."""
    if text.isascii():
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return exc.start, ord(text[exc.start])
    return None


def check_body(body: Any) -> None:
    """Raise ``RequestError(400)`` naming the first field that breaks a rule of this module."""
    stack: list[_Entry] = [(body, 0, None, None)]
    while stack:
        entry = stack.pop()
        value, depth = entry[0], entry[1]
        if isinstance(value, str):
            found = _lone_surrogate(value)
            if found is not None:
                raise RequestError(
                    400,
                    f"{_path(entry)}: contains a lone surrogate (U+{found[1]:04X}) at character"
                    f" {found[0]}; text must be valid Unicode",
                )
        elif isinstance(value, dict | list):
            if depth > MAX_DEPTH:
                raise RequestError(400, f"{_path(entry)}: nested more than {MAX_DEPTH} levels deep")
            if isinstance(value, list):
                stack.extend((v, depth + 1, entry, i) for i, v in enumerate(value))
                continue
            for key, v in value.items():
                found = _lone_surrogate(key)
                if found is not None:
                    raise RequestError(
                        400,
                        f"{_path(entry)}: the key '{_shown(key)}' contains a lone surrogate"
                        f" (U+{found[1]:04X}); text must be valid Unicode",
                    )
                stack.append((v, depth + 1, entry, key))
