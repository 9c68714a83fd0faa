"""``/dashboard/suppressions``: the account's suppression list — search, add, remove, CSV import
and export — through ``relaygate.manage.suppressions`` (the API's and the CLI's code path)."""

from __future__ import annotations

import csv
import io
import urllib.parse

from starlette.datastructures import UploadFile
from starlette.responses import Response

from relaygate.bounces.suppressions import EXPORT_COLUMNS, export_rows
from relaygate.dashboard.web import PREFIX, Ctx
from relaygate.errors import RequestError
from relaygate.manage import suppressions

PAGE = 100


def page(ctx: Ctx, *, status: int = 200, error: str = "", imported: object = None) -> Response:
    account = ctx.need_account()
    q = ctx.query("q", limit=320).lower()
    after = ctx.query("after", limit=320)
    rows = ctx.store.suppressions.all(account.id, limit=PAGE, after=after or _before(q))
    following = None
    if len(rows) == PAGE:
        following = f"{PREFIX}/suppressions?" + urllib.parse.urlencode(
            {"q": q, "after": rows[-1].address} if q else {"after": rows[-1].address}
        )
    return ctx.render(
        "suppressions.html",
        status=status,
        error=error,
        rows=rows,
        q=q,
        paged=bool(after),
        following=following,
        imported=imported,
    )


def _before(address: str) -> str:
    """A text just below ``address``: the list from there starts at ``address`` itself."""
    if not address or address[-1] == "\x00":
        return address[:-1]
    return address[:-1] + chr(ord(address[-1]) - 1) + "\U0010ffff"


def add(ctx: Ctx) -> Response:
    try:
        suppressions.add_suppression(
            ctx.store,
            ctx.actor(),
            ctx.field("address", limit=400),
            ctx.field("reason", limit=300) or "manual",
        )
    except RequestError as exc:
        if exc.status == 404:
            raise
        return page(ctx, status=exc.status, error=exc.detail)
    return ctx.redirect(f"{PREFIX}/suppressions", notice="suppressed")


def remove(ctx: Ctx) -> Response:
    suppressions.remove_suppression(ctx.store, ctx.actor(), ctx.field("address", limit=400))
    return ctx.redirect(f"{PREFIX}/suppressions", notice="unsuppressed")


def import_csv(ctx: Ctx) -> Response:
    upload = ctx.form.get("file")
    if isinstance(upload, UploadFile):
        raw = upload.file.read(suppressions.MAX_IMPORT + 1)
    else:
        raw = ctx.field("csv", limit=suppressions.MAX_IMPORT).encode()
    try:
        result = suppressions.import_suppressions(ctx.store, ctx.actor(), raw)
    except RequestError as exc:
        if exc.status == 404:
            raise
        return page(ctx, status=exc.status, error=exc.detail)
    return page(ctx, imported=result)


def export(ctx: Ctx) -> Response:
    account = ctx.need_account()
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(EXPORT_COLUMNS)
    for row in export_rows(ctx.store, account.id):
        writer.writerow(row)
    return ctx.finish(
        Response(
            out.getvalue(),
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="suppressions-{account.id}.csv"'
            },
        )
    )
