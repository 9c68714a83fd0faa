"""What every command module shares: reading the config, opening the store, printing output.

Output: ``out`` prints either the human text or, with ``--json``, the data as one line of JSON
(stable keys; dataclasses and paths made plain). Errors: a command raises ``CliError`` (or a
library error) and the entry point prints one line on stderr, or ``{"error": …}`` on stdout with
``--json``, and exits non-zero. Nothing outside ``relaygate.cli`` and ``relaygate.commands``
imports this module.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

from relaygate import settings as settings_mod
from relaygate.store import Store
from relaygate.store import open_store as open_settings_store

DEFAULT_CONFIG = "relaygate.toml"

#: What a subcommand runs: the parsed arguments in, the exit status out.
Handler = Callable[[argparse.Namespace], int]


class CliError(Exception):
    """A problem the operator can fix: printed as one line, exit status ``code``."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def out(args: argparse.Namespace, data: Any, human: str | Callable[[], str]) -> None:
    """Print ``data`` as JSON under ``--json``, else the human text."""
    if args.json:
        print(json.dumps(plain(data), indent=None, sort_keys=True))
    else:
        print(human() if callable(human) else human)


def plain(value: Any) -> Any:
    """``value`` with dataclasses, tuples and paths turned into JSON's types."""
    if is_dataclass(value) and not isinstance(value, type):
        return {k: plain(v) for k, v in asdict(value).items()}
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def cell(value: Any) -> str:
    """A value as a person reads it in a table: yes / no, ``-`` for nothing."""
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Left-aligned columns two spaces apart, the header first."""
    cells = [list(map(str, headers))] + [[cell(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells
    )


def load_settings(args: argparse.Namespace) -> settings_mod.Settings:
    path = Path(args.config)
    if not path.exists():
        raise CliError(
            f"{path}: no such config file (run `relaygate --config {path} init` first)", 2
        )
    return settings_mod.load(path)


def open_store(args: argparse.Namespace, settings: settings_mod.Settings | None = None) -> Store:
    """The store of the config, opened. An ``--account`` given as an id or a name (see
    ``add_account``) is checked here and replaced by the account's id."""
    s = settings or load_settings(args)
    if not s.database.exists():
        raise CliError(
            f"{s.database}: no store yet (run `relaygate --config {args.config} init`)", 2
        )
    store = open_settings_store(s)
    ref = getattr(args, "account", None)
    if isinstance(ref, str):
        args.account = account_id(store, ref)
    return store


def account_id(store: Store, ref: str) -> int:
    """The id of the account ``ref`` names: its id, or its name; an error when there is none."""
    if ref.isdigit():
        if store.accounts.get(int(ref)) is None:
            raise CliError(f"no account {ref}")
        return int(ref)
    named = [a.id for a in store.accounts.all() if a.name == ref]
    if not named:
        raise CliError(f"no account named {ref!r}")
    if len(named) > 1:
        ids = ", ".join(map(str, named))
        raise CliError(f"{len(named)} accounts are named {ref!r} (ids {ids}): give the id")
    return named[0]


def add_account(sp: argparse.ArgumentParser, *, required: bool, flag: str = "--account") -> None:
    """The ``--account ID|NAME`` option (``flag`` may be a positional name instead)."""
    kwargs: dict[str, Any] = {"metavar": "ACCOUNT", "help": "the account's id or name"}
    if flag.startswith("-"):
        sp.add_argument(flag, dest="account", required=required, **kwargs)
    else:
        sp.add_argument("account", **kwargs)


def write_secret_file(path: Path, data: bytes) -> None:
    """Create ``path`` (mode 0600, never over an existing file) holding ``data``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def add_command(parent: Any, name: str, func: Handler, help_: str) -> argparse.ArgumentParser:
    """A subcommand whose ``--json`` / ``--config`` also work after its name."""
    sp: argparse.ArgumentParser = parent.add_parser(name, help=help_)
    sp.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS
    )
    sp.add_argument("--config", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    sp.set_defaults(func=func)
    return sp


def add_noun(sub: Any, name: str, help_: str) -> Any:
    """A noun (``account``, ``queue`` …) whose verbs are added with ``add_command``."""
    return sub.add_parser(name, help=help_).add_subparsers(dest="sub", required=True)
