"""The command line is built from an explicit list: every command module is in it, none is skipped."""

from __future__ import annotations

import pkgutil

import relaygate.commands
from relaygate import cli


def test_every_command_module_is_listed_by_the_entry_point() -> None:
    modules = {
        info.name
        for info in pkgutil.iter_modules(relaygate.commands.__path__)
        if info.name != "common"
    }
    listed = {m.__name__.rsplit(".", 1)[1] for m in cli.COMMANDS}
    assert listed == modules


def test_every_listed_module_adds_its_command() -> None:
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert set(sub.choices or ()) >= {
        "init",
        "check-config",
        "serve",
        "quickstart",
        "status",
        "account",
        "key",
        "identity",
        "dkim",
        "template",
        "queue",
        "suppression",
        "webhook",
        "bounce",
    }
