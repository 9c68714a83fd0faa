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


def cmd_init(args: argparse.Namespace) -> int:
    s, created = initialise(
        Path(args.config),
        mode=args.mode,
        http_listen=args.http_listen,
        smtp_listen=args.smtp_listen,
        state_dir=args.state_dir,
        hostname=args.hostname,
    )
    data = {
        "config": str(Path(args.config)),
        "config_created": created,
        "state_dir": str(s.state_dir),
        "database": str(s.database),
    }
    out(
        args,
        data,
        lambda: (
            ("wrote " if created else "kept existing ") + f"{args.config}; store at {s.database}"
        ),
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
    sp.add_argument("--mode", default="mx", choices=settings_mod.DELIVERY_MODES)
    sp.add_argument("--http-listen", default=DEFAULT_HTTP_LISTEN)
    sp.add_argument("--smtp-listen", default=DEFAULT_SMTP_LISTEN)
    sp.add_argument("--state-dir", default="./var")
    sp.add_argument("--hostname", default=None)
    add_command(sub, "check-config", cmd_check_config, "validate the config, listing every problem")
