"""``relaygate template list|show|clone|create|delete``: the system catalog and accounts' own templates.

clone, create and delete are ``relaygate.manage.templates``' actions (the management API's
too); list and show read ``relaygate.compose.library``. This module reads files and prints.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from relaygate.commands.common import CliError, add_account, add_command, add_noun, open_store, out
from relaygate.compose import library
from relaygate.compose.templates import Template
from relaygate.manage import Actor
from relaygate.manage.templates import clone_template, delete_template, save_template


def cmd_list(args: argparse.Namespace) -> int:
    store = open_store(args) if args.account is not None else None
    rows = [{"slug": t.slug, "owner": t.owner} for t in library.list_templates(store, args.account)]
    out(args, rows, lambda: "\n".join(f"{r['slug']:24} {r['owner']}" for r in rows))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    store = open_store(args) if args.account is not None else None
    t, owner = library.resolve(store, args.account, args.slug)
    data = {"slug": t.slug, "owner": owner, "subject": t.subject, "html": t.html, "text": t.text}
    out(
        args,
        data,
        lambda: (
            f"# {t.slug} ({owner})\nsubject: {t.subject}\n\n--- html ---\n{t.html}\n--- text ---\n{t.text}"
        ),
    )
    return 0


def cmd_clone(args: argparse.Namespace) -> int:
    store = open_store(args)
    target = clone_template(store, Actor.cli(args.account), args.slug, args.as_slug)
    out(
        args,
        {"slug": target.slug, "account_id": args.account, "cloned_from": args.slug},
        f"cloned {args.slug} into account {args.account} as {target.slug}",
    )
    return 0


def _read(path: str | None) -> str:
    if path is None:
        return ""
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise CliError(f"{path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise CliError(f"{path}: not UTF-8 text") from None


def cmd_create(args: argparse.Namespace) -> int:
    t = Template(slug=args.slug, subject=args.subject, html=_read(args.html), text=_read(args.text))
    if not t.html and not t.text:
        raise CliError("a template needs --html FILE or --text FILE")
    store = open_store(args)
    save_template(store, Actor.cli(args.account), t)
    out(
        args,
        {"slug": t.slug, "account_id": args.account},
        f"template {t.slug} saved for account {args.account}",
    )
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    store = open_store(args)
    delete_template(store, Actor.cli(args.account), args.slug)
    out(args, {"slug": args.slug, "deleted": True}, f"deleted {args.slug}")
    return 0


def register(sub: Any) -> None:
    tpl = add_noun(sub, "template", "email templates")
    sp = add_command(tpl, "list", cmd_list, "system templates, and an account's own")
    add_account(sp, required=False)
    sp = add_command(tpl, "show", cmd_show, "print a template")
    sp.add_argument("slug")
    add_account(sp, required=False)
    sp = add_command(tpl, "clone", cmd_clone, "copy a system template into an account")
    sp.add_argument("slug")
    add_account(sp, required=True)
    sp.add_argument("--as", dest="as_slug", help="store it under another slug")
    sp = add_command(tpl, "create", cmd_create, "create or replace an account template")
    sp.add_argument("slug")
    add_account(sp, required=True)
    sp.add_argument("--subject", required=True, metavar="TEXT", help="the subject (Jinja2)")
    sp.add_argument("--html", metavar="FILE", help="read the HTML part (Jinja2) from FILE")
    sp.add_argument(
        "--text",
        metavar="FILE",
        help="read the plain-text part from FILE (default: made from the HTML)",
    )
    sp = add_command(tpl, "delete", cmd_delete, "delete an account template")
    sp.add_argument("slug")
    add_account(sp, required=True)
