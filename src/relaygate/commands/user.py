"""``relaygate user create|list|disable|enable|reset-password``: the people who sign in to the
dashboard. An operator sees every account; an account's user sees only that account.

A password comes from ``--password-file`` (its first line), or is asked for twice on a terminal,
or is read as one line from standard input otherwise (scripts). It is hashed with argon2id and
never printed. ``disable`` signs the user out everywhere at once.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path
from typing import Any

from relaygate.clock import iso_or_none
from relaygate.commands.common import (
    CliError,
    add_account,
    add_command,
    add_noun,
    open_store,
    out,
    table,
)
from relaygate.dashboard import passwords, users
from relaygate.errors import NotFound, RequestError
from relaygate.store import Store
from relaygate.store.models import User


def _password(args: argparse.Namespace, email: str) -> str:
    if args.password_file:
        try:
            text = Path(args.password_file).read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise CliError(f"{args.password_file}: not UTF-8 text") from None
        password = text.splitlines()[0] if text else ""
    elif sys.stdin.isatty():
        password = getpass.getpass(f"Password for {email}: ")
        if getpass.getpass("Again: ") != password:
            raise CliError("the two passwords differ; nothing was changed")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    try:
        return passwords.check_new(password, email=email)
    except RequestError as exc:
        raise CliError(f"{exc.detail}; nothing was changed") from None


def _user(store: Store, ref: str) -> User:
    try:
        return users.find(store, ref)
    except NotFound:
        raise CliError(f"no user {ref}") from None


def _data(u: User) -> dict[str, Any]:
    return {
        "id": u.id,
        "email": u.email,
        "operator": u.operator,
        "account_id": u.account_id,
        "two_factor": bool(u.totp_secret),
        "disabled": u.disabled_at is not None,
        "created_at": iso_or_none(u.created_at),
        "last_sign_in_at": iso_or_none(u.last_sign_in_at),
    }


def cmd_create(args: argparse.Namespace) -> int:
    store = open_store(args)
    if store.users.by_email(args.email) is not None:
        raise CliError(f"a user {args.email.strip().lower()} exists already")
    password = _password(args, args.email)
    user = users.create_user(
        store,
        "cli",
        email=args.email,
        password=password,
        account_id=None if args.operator else args.account,
    )
    who = "operator" if user.operator else f"user of account {user.account_id}"
    out(args, _data(user), f"user {user.id} {user.email} created ({who})")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    store = open_store(args)
    data = [_data(u) for u in store.users.all(args.account)]
    out(
        args,
        data,
        lambda: (
            table(
                ["ID", "EMAIL", "ROLE", "2FA", "DISABLED", "LAST SIGN-IN"],
                [
                    [
                        d["id"],
                        d["email"],
                        "operator" if d["operator"] else f"account {d['account_id']}",
                        d["two_factor"],
                        d["disabled"],
                        d["last_sign_in_at"],
                    ]
                    for d in data
                ],
            )
            if data
            else "no users (add one with `relaygate user create EMAIL --operator`)"
        ),
    )
    return 0


def cmd_disable(args: argparse.Namespace) -> int:
    store = open_store(args)
    user = _user(store, args.user)
    changed = users.set_disabled(store, "cli", user, True)
    out(
        args,
        {"id": user.id, "email": user.email, "disabled": True, "changed": changed},
        f"user {user.email} disabled and signed out"
        if changed
        else f"user {user.email} was disabled already",
    )
    return 0


def cmd_enable(args: argparse.Namespace) -> int:
    store = open_store(args)
    user = _user(store, args.user)
    changed = users.set_disabled(store, "cli", user, False)
    out(
        args,
        {"id": user.id, "email": user.email, "disabled": False, "changed": changed},
        f"user {user.email} enabled" if changed else f"user {user.email} was enabled already",
    )
    return 0


def cmd_reset_password(args: argparse.Namespace) -> int:
    store = open_store(args)
    user = _user(store, args.user)
    password = _password(args, user.email)
    ended = users.reset_password(
        store, "cli", user, password, clear_two_factor=args.clear_two_factor
    )
    out(
        args,
        {"id": user.id, "email": user.email, "sessions_ended": ended},
        f"password of {user.email} reset; {ended} session(s) signed out",
    )
    return 0


def register(sub: Any) -> None:
    noun = add_noun(sub, "user", "dashboard users")
    sp = add_command(noun, "create", cmd_create, "create a dashboard user")
    sp.add_argument("email", metavar="EMAIL")
    who = sp.add_mutually_exclusive_group(required=True)
    who.add_argument(
        "--account", dest="account", metavar="ACCOUNT", help="the account's id or name"
    )
    who.add_argument("--operator", action="store_true", help="an operator (sees every account)")
    sp.add_argument("--password-file", metavar="FILE", help="read the password from FILE")
    sp = add_command(noun, "list", cmd_list, "list dashboard users")
    add_account(sp, required=False)
    sp = add_command(noun, "disable", cmd_disable, "disable a user and end their sessions")
    sp.add_argument("user", metavar="USER", help="id or e-mail address")
    sp = add_command(noun, "enable", cmd_enable, "enable a disabled user")
    sp.add_argument("user", metavar="USER", help="id or e-mail address")
    sp = add_command(noun, "reset-password", cmd_reset_password, "set a new password")
    sp.add_argument("user", metavar="USER", help="id or e-mail address")
    sp.add_argument("--password-file", metavar="FILE", help="read the password from FILE")
    sp.add_argument(
        "--clear-two-factor", action="store_true", help="also turn two-factor sign-in off"
    )
