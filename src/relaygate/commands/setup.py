"""``relaygate init`` and ``relaygate check-config``: write a config, create the state dir and store.

``init`` writes a config only when there is none, then makes sure the state directory, the server
secret (0600) and the store exist; it is safe to run again.
"""

from __future__ import annotations

import argparse
import secrets
from pathlib import Path
from typing import Any

from relaygate import settings as settings_mod
from relaygate.commands.common import (
    CliError,
    add_command,
    load_settings,
    out,
    write_secret_file,
)
from relaygate.errors import ConfigError
from relaygate.ops import preflight
from relaygate.store import open_store

CONFIG_TEMPLATE = """\
# relaygate configuration (written by `relaygate init`). Every key is documented in
# config/relaygate.example.toml. Relative paths are relative to this file's directory.
state_dir = "{state_dir}"
hostname = "{hostname}"

[http]
listen = "{http_listen}"
public_url = "http://{http_listen}"

[smtp]
listen = ["{smtp_listen}"]

[delivery]
mode = "{mode}"

[dns]
nameservers = []

[bounces]
return_path_domain = ""

[webhooks]
allow_private = false
"""

DEFAULT_HTTP_LISTEN = "127.0.0.1:8025"
DEFAULT_SMTP_LISTEN = "127.0.0.1:2525"


def initialise(
    config: Path,
    *,
    mode: str = "mx",
    http_listen: str = DEFAULT_HTTP_LISTEN,
    smtp_listen: str = DEFAULT_SMTP_LISTEN,
    state_dir: str = "./var",
    hostname: str | None = None,
) -> tuple[settings_mod.Settings, bool]:
    """Write ``config`` if absent, then create the state dir, secret and store; (settings, written)."""
    created = False
    if not config.exists():
        config.parent.mkdir(parents=True, exist_ok=True)
        host = hostname or "localhost"
        config.write_text(
            CONFIG_TEMPLATE.format(
                state_dir=state_dir,
                hostname=host,
                http_listen=http_listen,
                smtp_listen=smtp_listen,
                mode=mode,
            )
        )
        created = True
    s = settings_mod.load(config)
    try:
        s.state_dir.mkdir(parents=True, exist_ok=True, mode=0o750)
    except OSError as exc:
        raise CliError(f"state_dir {s.state_dir}: cannot create ({exc.strerror or exc})") from None
    problems = preflight.writable_problems(s, roles=())
    if problems:
        raise CliError(problems[0])
    if not s.secret_key_file.exists():
        try:
            write_secret_file(s.secret_key_file, secrets.token_hex(32).encode() + b"\n")
        except OSError as exc:
            raise CliError(
                f"secret_key_file {s.secret_key_file}: cannot write ({exc.strerror or exc})"
            ) from None
    open_store(s).close()
    return s, created


def conflicts(config: Path, **asked: str | None) -> list[str]:
    """What an existing ``config`` says differently from the ``init`` options given (None: not
    given), as ``key = "config value" (asked "value")`` lines."""
    s = settings_mod.load(config)
    have: dict[str, tuple[str, object, object]] = {}
    if asked.get("mode") is not None:
        have["mode"] = ("delivery.mode", s.delivery.mode, asked["mode"])
    if asked.get("hostname") is not None:
        have["hostname"] = ("hostname", s.hostname, asked["hostname"])
    if asked.get("http_listen") is not None:
        have["http_listen"] = ("http.listen", s.http.listen, asked["http_listen"])
    if asked.get("smtp_listen") is not None:
        have["smtp_listen"] = ("smtp.listen", list(s.smtp.listen), [asked["smtp_listen"]])
    if asked.get("state_dir") is not None:
        wanted = Path(str(asked["state_dir"])).expanduser()
        if not wanted.is_absolute():
            wanted = config.resolve().parent / wanted
        have["state_dir"] = ("state_dir", s.state_dir.resolve(), wanted.resolve())
    return [
        f"{key} = {_show(now)} (asked for {_show(want)})"
        for key, now, want in have.values()
        if now != want
    ]


def _show(value: object) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return '"' + str(value) + '"'


def refuse_conflicts(config: Path, **asked: str | None) -> None:
    """An existing config is never rewritten: options that disagree with it are an error."""
    if not config.exists():
        return
    found = conflicts(config, **asked)
    if found:
        raise CliError(
            f"{config} already exists and init does not rewrite it; it has "
            + "; ".join(found)
            + ". Edit the file (or move it away and run init again)",
            2,
        )


def cmd_init(args: argparse.Namespace) -> int:
    config = Path(args.config)
    asked = {
        "mode": args.mode,
        "http_listen": args.http_listen,
        "smtp_listen": args.smtp_listen,
        "state_dir": args.state_dir,
        "hostname": args.hostname,
    }
    refuse_conflicts(config, **asked)
    s, created = initialise(
        config,
        mode=args.mode or "mx",
        http_listen=args.http_listen or DEFAULT_HTTP_LISTEN,
        smtp_listen=args.smtp_listen or DEFAULT_SMTP_LISTEN,
        state_dir=args.state_dir or "./var",
        hostname=args.hostname,
    )
    data = {
        "config": str(config),
        "config_created": created,
        "state_dir": str(s.state_dir),
        "database": str(s.database),
    }
    out(
        args,
        data,
        lambda: ("wrote " if created else "kept existing ") + f"{config}; store at {s.database}",
    )
    return 0


def cmd_check_config(args: argparse.Namespace) -> int:
    """The file's syntax and values, then what it points to on this host: the state directory
    (initialised, writable), the server secret (at least 32 bytes), the TLS files (they load as
    a pair). Every problem is listed at once."""
    s = load_settings(args)
    problems = preflight.problems(s)
    if problems:
        raise ConfigError([f"{s.path}: {p}" for p in problems])
    out(args, {"ok": True, "config": str(s.path)}, f"{s.path}: ok")
    return 0


def register(sub: Any) -> None:
    sp = add_command(sub, "init", cmd_init, "write a config (if none) and create the store")
    sp.add_argument(
        "--mode", choices=settings_mod.DELIVERY_MODES, help="delivery mode (default mx)"
    )
    sp.add_argument("--http-listen", metavar="HOST:PORT", help=f"default {DEFAULT_HTTP_LISTEN}")
    sp.add_argument("--smtp-listen", metavar="HOST:PORT", help=f"default {DEFAULT_SMTP_LISTEN}")
    sp.add_argument(
        "--state-dir", metavar="DIR", help="default ./var, relative to the config file's directory"
    )
    sp.add_argument(
        "--hostname", help="this host's name in SMTP and Message-IDs (default localhost)"
    )
    add_command(sub, "check-config", cmd_check_config, "validate the config, listing every problem")
