"""Checking the values an action is given (from JSON, a form or the command line): each check
returns the value in its Python type or raises ``Invalid`` naming the field."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from relaygate.errors import Invalid


def only(body: Mapping[str, Any], allowed: Iterable[str]) -> None:
    """``Invalid`` for the first field of ``body`` not in ``allowed``."""
    known = set(allowed)
    for name in body:
        if name not in known:
            raise Invalid(
                str(name), f"unknown field {str(name)!r}; fields are {', '.join(sorted(known))}"
            )


def text(
    value: Any, field: str, *, required: bool = False, max_len: int = 1000, default: str = ""
) -> str:
    """A string of at most ``max_len`` characters without control characters."""
    if value is None:
        if required:
            raise Invalid(field, f"{field} is required")
        return default
    if not isinstance(value, str):
        raise Invalid(field, f"{field} must be a string")
    if required and not value.strip():
        raise Invalid(field, f"{field} must not be empty")
    if len(value) > max_len:
        raise Invalid(field, f"{field} must be at most {max_len} characters")
    if not value.isprintable():
        raise Invalid(field, f"{field} must not contain control characters")
    return value


def source(value: Any, field: str, *, max_len: int) -> str:
    """A template source: any text (newlines and tabs allowed) of at most ``max_len`` characters."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise Invalid(field, f"{field} must be a string")
    if len(value) > max_len:
        raise Invalid(field, f"{field} must be at most {max_len} characters")
    return value


def strings(value: Any, field: str, *, max_items: int = 100, max_len: int = 200) -> list[str]:
    """A list of strings (``None``: empty)."""
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > max_items:
        raise Invalid(field, f"{field} must be a list of at most {max_items} strings")
    for item in value:
        if not isinstance(item, str) or len(item) > max_len:
            raise Invalid(field, f"{field} must be a list of strings")
    return list(value)


def integer(value: Any, field: str, *, default: int, low: int, high: int) -> int:
    """An integer from ``low`` to ``high`` (a string of digits too: query parameters)."""
    if value is None or value == "":
        return default
    if isinstance(value, str) and value.isdigit() and len(value) < 10:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise Invalid(field, f"{field} must be an integer from {low} to {high}")
    return value


def mapping(value: Any, field: str) -> dict[str, Any]:
    """An object (``None``: empty)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Invalid(field, f"{field} must be an object")
    return value


def text_block(value: Any, field: str, *, max_len: int = 5 * 1024 * 1024) -> str:
    """Any text (newlines allowed), required, of at most ``max_len`` characters."""
    if not isinstance(value, str) or not value.strip():
        raise Invalid(field, f"{field} is required and must be a string")
    if len(value) > max_len:
        raise Invalid(field, f"{field} must be at most {max_len} characters")
    return value
