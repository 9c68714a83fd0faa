"""``relaygate template list|show|clone|create|delete``: the system catalog and accounts' own templates.

An account's template shadows a system template of the same slug. ``clone`` copies a system
template into the account so it can be edited; ``create`` reads subject/html/text from files.
Every template is compiled (syntax, size) before it is stored.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

from relaygate.cli import CliError, add_command, open_store, out
from relaygate.compose.templates import Template, TemplateError, compile_check, system_catalog

_SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


def _check(template: Template) -> None:
    if not _SLUG.match(template.slug):
        raise CliError(f"slug {template.slug!r} must be 1-64 lowercase letters, digits, - or _")
    try:
        compile_check(template)
    except TemplateError as exc:
        raise CliError(f"template {template.slug!r}: {exc.detail}") from None


def cmd_list(args: argparse.Namespace) -> int:
    rows = [{"slug": slug, "owner": "system"} for slug in sorted(system_catalog())]
    if args.account is not None:
        own = open_store(args).list_templates(args.account)
        names = {r["slug"] for r in own}
        rows = [r for r in rows if r["slug"] not in names] + [
            {"slug": r["slug"], "owner": f"account {args.account}"} for r in own
        ]
        rows.sort(key=lambda r: r["slug"])
    out(args, rows, lambda: "\n".join(f"{r['slug']:24} {r['owner']}" for r in rows))
    return 0


def _resolve(args: argparse.Namespace) -> tuple[Template, str]:
    if args.account is not None:
        own = open_store(args).get_template(args.account, args.slug)
        if own is not None:
            return own, f"account {args.account}"
    found = system_catalog().get(args.slug)
    if found is None:
        raise CliError(f"no template {args.slug!r}")
    return found, "system"


def cmd_show(args: argparse.Namespace) -> int:
    t, owner = _resolve(args)
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
    source = system_catalog().get(args.slug)
    if source is None:
        raise CliError(f"no system template {args.slug!r}")
    target = Template(
        slug=args.as_slug or args.slug, subject=source.subject, html=source.html, text=source.text
    )
    _check(target)
    open_store(args).save_template(args.account, target, source=f"clone:{args.slug}")
    out(
        args,
        {"slug": target.slug, "account_id": args.account, "cloned_from": args.slug},
        f"cloned {args.slug} into account {args.account} as {target.slug}",
    )
    return 0


def cmd_create(args: argparse.Namespace) -> int:
    def read(path: str | None) -> str:
        if path is None:
            return ""
        try:
            return Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise CliError(f"{path}: {exc.strerror}") from None

    t = Template(slug=args.slug, subject=args.subject, html=read(args.html), text=read(args.text))
    if not t.html and not t.text:
        raise CliError("a template needs --html FILE or --text FILE")
    _check(t)
    open_store(args).save_template(args.account, t)
    out(
        args,
        {"slug": t.slug, "account_id": args.account},
        f"template {t.slug} saved for account {args.account}",
    )
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    if not open_store(args).delete_template(args.account, args.slug):
        raise CliError(f"account {args.account} has no template {args.slug!r}")
    out(args, {"slug": args.slug, "deleted": True}, f"deleted {args.slug}")
    return 0


def register(sub: Any) -> None:
    tpl = sub.add_parser("template", help="email templates").add_subparsers(
        dest="sub", required=True
    )
    sp = add_command(tpl, "list", cmd_list, "system templates, and an account's own")
    sp.add_argument("--account", type=int)
    sp = add_command(tpl, "show", cmd_show, "print a template")
    sp.add_argument("slug")
    sp.add_argument("--account", type=int)
    sp = add_command(tpl, "clone", cmd_clone, "copy a system template into an account")
    sp.add_argument("slug")
    sp.add_argument("--account", type=int, required=True)
    sp.add_argument("--as", dest="as_slug", help="store it under another slug")
    sp = add_command(tpl, "create", cmd_create, "create or replace an account template")
    sp.add_argument("slug")
    sp.add_argument("--account", type=int, required=True)
    sp.add_argument("--subject", required=True)
    sp.add_argument("--html")
    sp.add_argument("--text")
    sp = add_command(tpl, "delete", cmd_delete, "delete an account template")
    sp.add_argument("slug")
    sp.add_argument("--account", type=int, required=True)
