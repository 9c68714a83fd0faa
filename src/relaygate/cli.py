"""The ``relaygate`` command: one small function per subcommand.

Every command takes ``--config PATH`` (default ``./relaygate.toml``) and ``--json`` (stable keys,
for scripts). Errors print one clear line (or every config problem) and exit non-zero; secrets
are printed only where the contract says so (a new key's secret, once).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

from relaygate import settings as settings_mod
from relaygate.errors import ConfigError, RelaygateError, RequestError
from relaygate.store.spool import Store

DEFAULT_CONFIG = "relaygate.toml"

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


class CliError(Exception):
    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def out(args: argparse.Namespace, data: Any, human: str | Callable[[], str]) -> None:
    if args.json:
        print(json.dumps(_plain(data), indent=None, sort_keys=True))
    else:
        print(human() if callable(human) else human)


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {k: _plain(v) for k, v in asdict(value).items()}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def load_settings(args: argparse.Namespace) -> settings_mod.Settings:
    path = Path(args.config)
    if not path.exists():
        raise CliError(
            f"{path}: no such config file (run `relaygate --config {path} init` first)", 2
        )
    return settings_mod.load(path)


def open_store(args: argparse.Namespace) -> Store:
    s = load_settings(args)
    if not s.database.exists():
        raise CliError(
            f"{s.database}: no store yet (run `relaygate --config {args.config} init`)", 2
        )
    return Store(s.database).open()


def write_secret_file(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


# -- init / check-config / serve -----------------------------------------------------------------
def initialise(
    config: Path,
    *,
    mode: str = "mx",
    http_listen: str = "127.0.0.1:8025",
    smtp_listen: str = "127.0.0.1:2525",
    state_dir: str = "./var",
    hostname: str | None = None,
) -> tuple[settings_mod.Settings, bool]:
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
    s.state_dir.mkdir(parents=True, exist_ok=True, mode=0o750)
    if not s.secret_key_file.exists():
        write_secret_file(s.secret_key_file, secrets.token_hex(32).encode() + b"\n")
    Store(s.database).open().close()
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
    s = load_settings(args)
    out(args, {"ok": True, "config": str(s.path)}, f"{s.path}: ok")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from relaygate.service import ROLES, Service

    s = load_settings(args)
    roles = args.role or list(ROLES)
    _configure_logging(s)
    _run(Service(s, roles=roles).run())
    return 0


def _configure_logging(s: settings_mod.Settings) -> None:
    from relaygate.logs import configure_logging, under_journald

    configure_logging(
        s.log_level.upper(), json=s.log_json, stream=sys.stdout, level_prefix=under_journald()
    )


def _run(coro: Any) -> None:
    try:
        import uvloop

        uvloop.run(coro)
    except ImportError:
        asyncio.run(coro)


def cmd_quickstart(args: argparse.Namespace) -> int:
    """`make run`: initialise ./var once (demo account, key, identity) and serve in capture mode."""
    config = Path(args.config)
    s, _ = initialise(
        config,
        mode="capture",
        state_dir=".",
        hostname="localhost",
        http_listen=args.http_listen,
        smtp_listen=args.smtp_listen,
    )
    store = Store(s.database).open()
    key_file = s.state_dir / "demo-key"
    if not store.list_accounts():
        account = store.create_account("demo", plan="paid", daily_quota=10_000, rate_limit=100)
        store.add_identity(account.id, "example.com", verified=True)
        _, secret = store.create_key(account.id, scopes=["email:send", "email:read"], name="demo")
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
    from relaygate.service import Service

    _run(Service(s).run())
    return 0


# -- accounts / keys / identities ---------------------------------------------------------------
def cmd_account_create(args: argparse.Namespace) -> int:
    store = open_store(args)
    a = store.create_account(
        args.name, plan=args.plan, daily_quota=args.daily_quota, rate_limit=args.rate_limit
    )
    out(
        args,
        {
            "id": a.id,
            "name": a.name,
            "plan": a.plan,
            "daily_quota": a.daily_quota,
            "rate_limit": a.rate_limit,
        },
        f"account {a.id} ({a.name}, {a.plan}) created",
    )
    return 0


def cmd_account_list(args: argparse.Namespace) -> int:
    store = open_store(args)
    rows = store.list_accounts()
    out(
        args,
        rows,
        lambda: _table(
            ["id", "name", "plan", "daily_quota", "rate_limit"],
            [[a.id, a.name, a.plan, a.daily_quota, a.rate_limit] for a in rows],
        ),
    )
    return 0


def cmd_account_set(args: argparse.Namespace) -> int:
    store = open_store(args)
    fields: dict[str, Any] = {}
    for name in ("plan", "daily_quota", "rate_limit", "track_opens", "track_clicks"):
        value = getattr(args, name, None)
        if value is not None:
            fields[name] = int(value) if isinstance(value, bool) else value
    a = store.update_account(args.id, **fields)
    out(args, a, f"account {a.id} updated")
    return 0


def cmd_key_create(args: argparse.Namespace) -> int:
    store = open_store(args)
    key, secret = store.create_key(
        args.account, scopes=args.scope or ["email:send"], name=args.name or ""
    )
    out(
        args,
        {
            "id": key.id,
            "key": secret,
            "account_id": key.account_id,
            "scopes": list(key.scopes),
            "name": key.name,
        },
        f"key {key.id} for account {key.account_id} ({' '.join(key.scopes)}):\n{secret}\n(shown once: store it now)",
    )
    return 0


def cmd_key_list(args: argparse.Namespace) -> int:
    store = open_store(args)
    keys = store.list_keys(args.account)
    data: list[dict[str, Any]] = [
        {
            "id": k.id,
            "account_id": k.account_id,
            "name": k.name,
            "scopes": list(k.scopes),
            "hint": k.hint,
            "created_at": k.created_at,
            "revoked": k.revoked_at is not None,
        }
        for k in keys
    ]
    out(
        args,
        data,
        lambda: _table(
            ["id", "account", "name", "scopes", "hint", "revoked"],
            [
                [
                    d["id"],
                    d["account_id"],
                    d["name"],
                    " ".join(d["scopes"]),
                    d["hint"],
                    d["revoked"],
                ]
                for d in data
            ],
        ),
    )
    return 0


def cmd_key_revoke(args: argparse.Namespace) -> int:
    store = open_store(args)
    if not store.revoke_key(args.id) and store.get_key(args.id) is None:
        raise CliError(f"no key {args.id}")
    out(args, {"id": args.id, "revoked": True}, f"key {args.id} revoked")
    return 0


def cmd_identity_add(args: argparse.Namespace) -> int:
    if "@" not in args.identity:
        from relaygate.dkim.commands import add_domain_identity

        return add_domain_identity(args)
    store = open_store(args)
    ident = store.add_identity(args.account, args.identity, verified=args.verified)
    data = {
        "id": ident.id,
        "account_id": ident.account_id,
        "kind": ident.kind,
        "value": ident.value,
        "status": ident.status,
    }
    out(args, data, f"{ident.kind} {ident.value} for account {ident.account_id}: {ident.status}")
    return 0


def cmd_identity_list(args: argparse.Namespace) -> int:
    from relaygate.store.domains import identities

    store = open_store(args)
    rows = identities(store, args.account)
    data: list[dict[str, Any]] = [
        {
            "id": d.identity.id,
            "account_id": d.identity.account_id,
            "kind": d.identity.kind,
            "value": d.identity.value,
            "status": d.identity.status,
            "reason": d.status_reason,
            "last_checked_at": d.last_checked_at,
        }
        for d in rows
    ]
    out(
        args,
        data,
        lambda: _table(
            ["id", "account", "kind", "value", "status", "reason"],
            [
                [d["id"], d["account_id"], d["kind"], d["value"], d["status"], d["reason"]]
                for d in data
            ],
        ),
    )
    return 0


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [list(map(str, headers))] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells
    )


# -- parser -------------------------------------------------------------------------------------
def add_command(
    parent: Any, name: str, func: Callable[[argparse.Namespace], int], help_: str
) -> argparse.ArgumentParser:
    """A subcommand whose ``--json`` / ``--config`` also work after its name (plugins use it too)."""
    sp: argparse.ArgumentParser = parent.add_parser(name, help=help_)
    sp.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS
    )
    sp.add_argument("--config", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    sp.set_defaults(func=func)
    return sp


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="relaygate", description="Self-hosted SMTP relay gateway.")
    p.add_argument(
        "--config", default=DEFAULT_CONFIG, help="config file (default ./relaygate.toml)"
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    sub = p.add_subparsers(dest="command", required=True)

    add = add_command

    sp = add(sub, "init", cmd_init, "write a config (if none) and create the store")
    sp.add_argument("--mode", default="mx", choices=settings_mod.DELIVERY_MODES)
    sp.add_argument("--http-listen", default="127.0.0.1:8025")
    sp.add_argument("--smtp-listen", default="127.0.0.1:2525")
    sp.add_argument("--state-dir", default="./var")
    sp.add_argument("--hostname", default=None)
    add(sub, "check-config", cmd_check_config, "validate the config, listing every problem")
    sp = add(sub, "serve", cmd_serve, "run relaygate")
    sp.add_argument("--role", action="append", choices=("http", "smtp", "relay", "webhooks"))
    sp = add(sub, "quickstart", cmd_quickstart, "initialise a demo setup and serve in capture mode")
    sp.add_argument("--http-listen", default="127.0.0.1:8025")
    sp.add_argument("--smtp-listen", default="127.0.0.1:2525")

    acc = sub.add_parser("account", help="accounts").add_subparsers(dest="sub", required=True)
    sp = add(acc, "create", cmd_account_create, "create an account")
    sp.add_argument("name")
    sp.add_argument("--plan", default="trial", choices=("free", "trial", "paid"))
    sp.add_argument("--daily-quota", type=int, default=10_000)
    sp.add_argument("--rate-limit", type=int, default=100)
    add(acc, "list", cmd_account_list, "list accounts")
    sp = add(acc, "set", cmd_account_set, "change an account")
    sp.add_argument("id", type=int)
    sp.add_argument("--plan", choices=("free", "trial", "paid"))
    sp.add_argument("--daily-quota", type=int)
    sp.add_argument("--rate-limit", type=int)
    sp.add_argument("--track-opens", action=argparse.BooleanOptionalAction, default=None)
    sp.add_argument("--track-clicks", action=argparse.BooleanOptionalAction, default=None)

    key = sub.add_parser("key", help="API keys").add_subparsers(dest="sub", required=True)
    sp = add(key, "create", cmd_key_create, "create a key (the secret is shown once)")
    sp.add_argument("--account", type=int, required=True)
    sp.add_argument("--scope", action="append", choices=("email:send", "email:read"))
    sp.add_argument("--name")
    sp = add(key, "list", cmd_key_list, "list keys (never their secrets)")
    sp.add_argument("--account", type=int)
    sp = add(key, "revoke", cmd_key_revoke, "revoke a key")
    sp.add_argument("id")

    ident = sub.add_parser("identity", help="sender identities").add_subparsers(
        dest="sub", required=True
    )
    sp = add(ident, "add", cmd_identity_add, "add an address or domain identity")
    sp.add_argument("--account", type=int, required=True)
    sp.add_argument("identity")
    sp.add_argument("--verified", action="store_true", help="operator asserts the identity")
    sp.add_argument("--ed25519", action="store_true", help="add an Ed25519 DKIM key as well")
    sp.add_argument("--selector", help="DKIM selector (default rg<YYYYMM>)")
    sp = add(ident, "list", cmd_identity_list, "list identities")
    sp.add_argument("--account", type=int)
    from relaygate.dkim.commands import cmd_identity_verify

    sp = add(ident, "verify", cmd_identity_verify, "check a domain's DNS records now")
    sp.add_argument("domain")

    for register in _plugins():
        register(sub)
    return p


#: Modules that add subcommands: each defines ``register(subparsers)``. Listed here, imported if present.
PLUGIN_MODULES = (
    "relaygate.bounces.commands",
    "relaygate.bounces.suppressions",
    "relaygate.events.commands",
    "relaygate.gateway.smtp_commands",
    "relaygate.relay.commands",
    "relaygate.dkim.commands",
    "relaygate.compose.commands",
    "relaygate.ops_commands",
)


def _plugins() -> list[Callable[[Any], None]]:
    import importlib
    import importlib.util

    found: list[Callable[[Any], None]] = []
    for module in PLUGIN_MODULES:
        if importlib.util.find_spec(module) is None:
            continue
        found.append(importlib.import_module(module).register)
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "json"):
        args.json = False
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
    except CliError as exc:
        _fail(args, str(exc))
        return exc.code
    except RequestError as exc:
        _fail(args, exc.detail)
        return 1
    except RelaygateError as exc:
        _fail(args, str(exc))
        return 1


def _fail(args: argparse.Namespace, message: str) -> None:
    if args.json:
        print(json.dumps({"error": message}))
    else:
        print(f"relaygate: {message}", file=sys.stderr)


if __name__ == "__main__":  # ``python -m relaygate.cli``: run the module's canonical copy
    from relaygate.cli import main as _main

    sys.exit(_main())
