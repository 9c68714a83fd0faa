"""The ``relaygate`` command: the parser built from ``relaygate.commands``, and error printing.

Every command takes ``--config PATH`` (default ``./relaygate.toml``) and ``--json`` (stable keys,
times in ISO 8601 UTC, for scripts). Errors print one clear line on stderr (or every config
problem; with ``--json`` one ``{"error": …}`` object on stdout) and exit non-zero, never a
traceback (``RELAYGATE_TRACEBACK=1`` shows one for an unexpected error); a closed output pipe
ends the command quietly. Secrets are printed only where the contract says so (a new key's
secret, once).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Sequence
from types import ModuleType

from relaygate.commands import (
    account,
    bounce,
    dkim,
    identity,
    inbound,
    key,
    queue,
    serve,
    setup,
    status,
    suppression,
    template,
    user,
    webhook,
)
from relaygate.commands.common import DEFAULT_CONFIG, CliError
from relaygate.errors import ConfigError, RelaygateError, RequestError, StartupError

#: Set to show the traceback of an unexpected error instead of its one-line summary.
TRACEBACK_ENV = "RELAYGATE_TRACEBACK"

#: The command modules, in the order ``--help`` lists their commands.
COMMANDS: tuple[ModuleType, ...] = (
    setup,
    serve,
    status,
    account,
    key,
    identity,
    dkim,
    template,
    queue,
    suppression,
    webhook,
    bounce,
    inbound,
    user,
)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="relaygate", description="Self-hosted SMTP relay gateway.")
    p.add_argument(
        "--config", default=DEFAULT_CONFIG, help="config file (default ./relaygate.toml)"
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    sub = p.add_subparsers(dest="command", required=True)
    for module in COMMANDS:
        module.register(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "json"):
        args.json = False
    try:
        code = _run(args)
        sys.stdout.flush()  # a closed pipe shows here, not at exit
        return code
    except BrokenPipeError:
        # The reader went away (``relaygate status | head -1``): stop quietly, as tools killed
        # by SIGPIPE do, and keep the interpreter's final flush from complaining.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE
    except KeyboardInterrupt:
        return 128 + signal.SIGINT


def _run(args: argparse.Namespace) -> int:
    """Run the command; every error becomes one line (``--json``: one object) and a status."""
    try:
        code: int = args.func(args)
        return code
    except ConfigError as exc:
        if args.json:
            print(json.dumps({"error": "invalid configuration", "problems": exc.problems}))
        else:
            print("invalid configuration:", file=sys.stderr)
            for problem in exc.problems:
                print(f"  - {problem}", file=sys.stderr)
        return 2
    except StartupError as exc:
        if args.json:
            print(json.dumps({"error": "cannot start", "problems": exc.problems}))
        else:
            for problem in exc.problems:
                print(f"relaygate: cannot start: {problem}", file=sys.stderr)
        return 1
    except CliError as exc:
        _fail(args, str(exc))
        return exc.code
    except RequestError as exc:
        _fail(args, exc.detail)
        return 1
    except RelaygateError as exc:
        _fail(args, str(exc))
        return 1
    except (BrokenPipeError, KeyboardInterrupt):
        raise
    except OSError as exc:  # a file or directory the command needed
        where = f"{exc.filename}: " if exc.filename else ""
        _fail(args, f"{where}{exc.strerror or type(exc).__name__}")
        return 1
    except Exception as exc:
        if os.environ.get(TRACEBACK_ENV):
            raise
        _fail(
            args,
            f"internal error ({type(exc).__name__}); run again with {TRACEBACK_ENV}=1 to see where",
        )
        return 70  # EX_SOFTWARE


def _fail(args: argparse.Namespace, message: str) -> None:
    if args.json:
        print(json.dumps({"error": message}))
    else:
        print(f"relaygate: {message}", file=sys.stderr)


if __name__ == "__main__":  # ``python -m relaygate.cli``: run the module's canonical copy
    from relaygate.cli import main as _main

    sys.exit(_main())
