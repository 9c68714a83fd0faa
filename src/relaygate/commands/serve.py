"""``relaygate serve`` (the roles of ``relaygate.service``) and ``relaygate quickstart`` (``make run``)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from relaygate import settings as settings_mod
from relaygate.commands.common import add_command, load_settings, write_secret_file
from relaygate.commands.setup import (
    DEFAULT_HTTP_LISTEN,
    DEFAULT_SMTP_LISTEN,
    initialise,
    refuse_conflicts,
)
from relaygate.logs import configure_logging, under_journald
from relaygate.settings import ROLES
from relaygate.store import open_store


def cmd_serve(args: argparse.Namespace) -> int:
    from relaygate.service import Service  # here: the servers' imports cost 0.3 s per command

    s = load_settings(args)
    roles = tuple(dict.fromkeys(args.role or ROLES))
    service = Service(s, roles=roles)
    service.prepare()  # every reason it cannot start, before it touches anything
    _configure_logging(s)
    _run(service.run())
    return 0


def _configure_logging(s: settings_mod.Settings) -> None:
    configure_logging(
        s.log_level.upper(), json=s.log_json, stream=sys.stdout, level_prefix=under_journald()
    )


def _run(coro: Coroutine[Any, Any, None]) -> None:
    try:
        import uvloop
    except ImportError:
        asyncio.run(coro)
        return
    uvloop.run(coro)


def cmd_quickstart(args: argparse.Namespace) -> int:
    """`make run`: initialise ./var once (demo account, key, identity) and serve in capture mode."""
    config = Path(args.config)
    refuse_conflicts(config, http_listen=args.http_listen, smtp_listen=args.smtp_listen)
    s, _ = initialise(
        config,
        mode="capture",
        state_dir=".",
        hostname="localhost",
        http_listen=args.http_listen or DEFAULT_HTTP_LISTEN,
        smtp_listen=args.smtp_listen or DEFAULT_SMTP_LISTEN,
    )
    from relaygate.service import Service

    service = Service(s)
    service.prepare()  # a second `make run` stops here, naming the first one's pid
    store = open_store(s)
    key_file = s.state_dir / "demo-key"
    if not store.accounts.all():
        account = store.accounts.create("demo", plan="paid", daily_quota=10_000, rate_limit=100)
        store.identities.add(account.id, "example.com", verified=True)
        _, secret = store.keys.create(account.id, scopes=["email:send", "email:read"], name="demo")
        write_secret_file(key_file, secret.encode() + b"\n")
    store.close()
    secret = key_file.read_text().strip() if key_file.exists() else "<your key>"
    host, port = settings_mod.parse_hostport(s.http.listen)
    smtp_host, smtp_port = settings_mod.parse_hostport(s.smtp.listen[0])
    print(
        f"""
relaygate is starting (delivery mode: {s.delivery.mode}; mail is written to {s.capture_dir})
  HTTP API : http://{host}:{port}
  SMTP     : {smtp_host}:{smtp_port}
  demo key : {secret}   (kept in {key_file}, mode 0600)

Send a test message:
  curl -s -X POST http://{host}:{port}/v1/send \\
    -H "X-API-Key: {secret}" -H "Content-Type: application/json" \\
    -d '{{"from_email": "you@example.com", "to": ["recipient@example.com"], "subject": "Hello", "html": "<p>Hi from relaygate</p>", "text": "Hi from relaygate"}}'
""",
        flush=True,
    )
    _configure_logging(s)
    _run(service.run())
    return 0


def register(sub: Any) -> None:
    sp = add_command(sub, "serve", cmd_serve, "run relaygate")
    sp.add_argument("--role", action="append", choices=ROLES)
    sp = add_command(
        sub, "quickstart", cmd_quickstart, "initialise a demo setup and serve in capture mode"
    )
    sp.add_argument("--http-listen", metavar="HOST:PORT", help=f"default {DEFAULT_HTTP_LISTEN}")
    sp.add_argument("--smtp-listen", metavar="HOST:PORT", help=f"default {DEFAULT_SMTP_LISTEN}")
