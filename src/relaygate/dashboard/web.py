"""The dashboard's request plumbing: sessions from cookies, CSRF, rendering, security headers.

Every dashboard route is a ``Page``: an async shell that reads the form (bounded), then runs
the handler — a plain function — in the thread pool, because every store call is blocking and
argon2 costs ~50 ms of CPU. Around the handler: ``[dashboard] allow_from`` (anyone else: 404),
the session (none: 303 to ``/dashboard/login?next=…``), the CSRF token of every POST (missing or
wrong: 403), and the error pages (``RequestError`` → its status; the store failing → 503; a bug
→ 503, logged, never its text).

Trust: cookies, form fields, query strings and X-Forwarded-For are stranger-controlled. The
session cookie holds a random token; the store knows only its SHA-256. Templates are Jinja2 with
autoescape on, so every value a page shows is escaped. Every answer carries a
Content-Security-Policy without inline script, ``X-Frame-Options: DENY`` and ``no-store``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import jinja2
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from relaygate.clock import Clock
from relaygate.compose.renderer import Renderer
from relaygate.dashboard.clientaddr import Networks, client_address
from relaygate.errors import RequestError, StoreUnavailable
from relaygate.manage import Actor
from relaygate.settings import Settings
from relaygate.store import Store
from relaygate.store.models import Account, User, UserSession

log = logging.getLogger("relaygate.dashboard")

PREFIX = "/dashboard"
SESSION_COOKIE = "rg_session"
LOGIN_COOKIE = "rg_login"
#: Sessions end after this long without a request, or this long after sign-in (API.md §12).
IDLE_SECONDS = 12 * 3600
ABSOLUTE_SECONDS = 7 * 86400
#: A session waiting for its TOTP code lasts this long.
SECOND_FACTOR_SECONDS = 300
#: A session's last-seen time is written at most this often (not a write per page).
TOUCH_EVERY = 60
#: The largest form accepted (the CSV import is the big one).
MAX_FORM_BYTES = 5 * 1024 * 1024

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-src 'self'; frame-ancestors 'none'; "
    "base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

#: Messages a redirect may ask a page to show (``?notice=code``): fixed texts, so a link cannot
#: put words of a stranger's choosing on the page.
NOTICES = {
    "signed-out": "You are signed out.",
    "password-changed": "Your password is changed. Your other sessions were signed out.",
    "two-factor-on": "Two-factor sign-in is on. You will be asked for a code when you sign in.",
    "two-factor-off": "Two-factor sign-in is off.",
    "expired": "Your session ended. Sign in again.",
    "key-revoked": "The key is revoked: requests with it are refused from now on.",
    "switched": "Account switched.",
    "account-created": "The account is created, and it is the one on screen now.",
    "user-created": "The user is created: they can sign in now.",
    "user-disabled": "The user is disabled and signed out everywhere.",
    "user-enabled": "The user is enabled again.",
    "queue-retry": "Done: those recipients are due now.",
    "queue-hold": "Done: those recipients are held until released.",
    "queue-release": "Done: those recipients are back in the queue.",
    "cancelled": "The recipients not yet delivered are cancelled.",
    "suppressed": "The address is suppressed: nothing is sent to it from now on.",
    "unsuppressed": "The address is off the list: mail to it is sent again.",
    "replayed": "Replayed: the deliveries are due again now.",
    "webhook-removed": "The endpoint is removed: nothing more is sent to it.",
    "rotated": "A new DKIM key is made: publish its record below; signing switches once it is found.",
    "cloned": "Cloned: this copy is yours to edit.",
    "template-saved": "Saved: sends with this slug use it from now on.",
    "template-deleted": "The template is deleted.",
    "plan-changed": "The plan is changed; it counts from the next request on.",
}


def session_id(token: str) -> str:
    """What the store keeps of a session token."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


def safe_next(target: str | None) -> str:
    """A local dashboard path to go to after sign-in, or the overview (no open redirect)."""
    if (
        not target
        or not target.startswith(PREFIX)
        or target.startswith("//")
        or "\\" in target
        or any(ord(ch) < 0x21 for ch in target)
    ):
        return PREFIX
    return target


def when(ts: float | None) -> str:
    """A time as a person reads it in a table (UTC)."""
    if ts is None:
        return "—"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def ago(seconds: float | None) -> str:
    """A duration, roughly: 42 s, 5 min, 3 h, 2 d."""
    if seconds is None:
        return "—"
    s = max(0, int(seconds))
    if s < 120:
        return f"{s} s"
    if s < 7200:
        return f"{s // 60} min"
    if s < 172800:
        return f"{s // 3600} h"
    return f"{s // 86400} d"


def number(value: int | float | None) -> str:
    if value is None:
        return "—"
    return f"{value:,}".replace(",", "\u202f")


@dataclass
class Ctx:
    """One request as a handler sees it (in the thread pool)."""

    request: Request
    dash: Dashboard
    form: Mapping[str, Any]
    client: str
    user: User | None = None
    session: UserSession | None = None
    account: Account | None = None
    accounts: list[Account] = field(default_factory=list)
    cookies: list[tuple[str, str, int | None]] = field(default_factory=list)

    @property
    def store(self) -> Store:
        return self.dash.store

    @property
    def now(self) -> float:
        return self.dash.clock.now()

    @property
    def operator(self) -> bool:
        return self.user is not None and self.user.operator

    def field(self, name: str, *, default: str = "", limit: int = 10_000) -> str:
        """A text field of the form (trimmed); 400 when it is longer than ``limit``."""
        value = self.form.get(name, default)
        if isinstance(value, UploadFile):
            raise RequestError(400, f"{name} must be text, not a file")
        text = str(value).strip()
        if len(text) > limit:
            raise RequestError(400, f"{name} is longer than {limit} characters")
        return text

    def query(self, name: str, *, limit: int = 500) -> str:
        text = self.request.query_params.get(name, "").strip()
        if len(text) > limit:
            raise RequestError(400, f"{name} is longer than {limit} characters")
        return text

    def actor(self) -> Actor:
        """The signed-in user acting on the account on screen (every action's audit entry says
        ``user:<id>`` and the client's address)."""
        account = self.need_account()
        assert self.user is not None
        return Actor.of_user(self.user.id, account.id, address=self.client)

    def need_account(self) -> Account:
        if self.account is None:
            raise RequestError(404, "there is no account yet: create one first")
        return self.account

    def render(self, template: str, *, status: int = 200, **values: Any) -> Response:
        notice = NOTICES.get(self.request.query_params.get("notice", ""))
        html = self.dash.env.get_template(template).render(
            ctx=self,
            user=self.user,
            account=self.account,
            accounts=self.accounts,
            csrf=self.session.csrf if self.session is not None else "",
            notice=notice,
            path=self.request.url.path,
            operator_contact=self.dash.settings.dashboard.operator_contact,
            **values,
        )
        return self.finish(HTMLResponse(html, status_code=status))

    def redirect(self, target: str, *, notice: str = "") -> Response:
        if notice:
            sep = "&" if "?" in target else "?"
            target = f"{target}{sep}notice={notice}"
        return self.finish(RedirectResponse(target, status_code=303))

    def set_cookie(self, name: str, value: str, max_age: int | None) -> None:
        self.cookies.append((name, value, max_age))

    def finish(self, response: Response) -> Response:
        for name, value, max_age in self.cookies:
            if value:
                response.set_cookie(
                    name,
                    value,
                    max_age=max_age,
                    path=PREFIX,
                    secure=self.dash.secure,
                    httponly=True,
                    samesite="lax",
                )
            else:
                response.delete_cookie(
                    name, path=PREFIX, secure=self.dash.secure, httponly=True, samesite="lax"
                )
        return response


Handler = Callable[[Ctx], Response]


class Dashboard:
    """What every page shares: the store, the settings, the clock, the templates."""

    def __init__(
        self, *, store: Store, settings: Settings, clock: Clock, renderer: Renderer | None = None
    ) -> None:
        self.store = store
        self.renderer = renderer
        self.settings = settings
        self.clock = clock
        self.secure = settings.http.public_url.startswith("https://")
        self.trusted = Networks(settings.http.trusted_proxies)
        self.allowed = Networks(settings.dashboard.allow_from)
        self.env = jinja2.Environment(
            loader=jinja2.PackageLoader("relaygate.dashboard", "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters.update(when=when, ago=ago, number=number)
        self.env.globals.update(prefix=PREFIX)

    # -- the shell every route goes through ---------------------------------------------------
    def page(
        self, handler: Handler, *, signed_in: bool = True, operator: bool = False
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            peer = request.client.host if request.client else ""
            client = client_address(peer, request.headers.get("x-forwarded-for"), self.trusted)
            if self.allowed and client not in self.allowed:
                return _headers(HTMLResponse("Not Found", status_code=404))
            try:
                form = await _read_form(request) if request.method == "POST" else {}
            except RequestError as exc:
                return await run_in_threadpool(self._error, request, client, exc.status, exc.detail)
            except ClientDisconnect:
                return _headers(HTMLResponse("", status_code=400))
            return await run_in_threadpool(
                self._run, handler, request, form, client, signed_in, operator
            )

        return endpoint

    def _run(
        self,
        handler: Handler,
        request: Request,
        form: Mapping[str, Any],
        client: str,
        signed_in: bool,
        operator: bool,
    ) -> Response:
        ctx = Ctx(request=request, dash=self, form=form, client=client)
        try:
            if signed_in:
                if not self._sign_in(ctx):
                    target = request.url.path
                    if request.url.query:
                        target += "?" + request.url.query
                    quoted = urllib.parse.quote(safe_next(target), safe="/")
                    return ctx.finish(RedirectResponse(f"{PREFIX}/login?next={quoted}", 303))
                if request.method == "POST":
                    self.check_csrf(ctx, ctx.session.csrf if ctx.session else "")
                if operator and not ctx.operator:
                    raise RequestError(404, "not found")
            response = handler(ctx)
        except RequestError as exc:
            return self._error(request, client, exc.status, exc.detail, ctx=ctx)
        except StoreUnavailable:
            log.warning("store unavailable", extra={"path": request.url.path})
            return self._error(
                request, client, 503, "The store is busy right now. Try again in a moment.", ctx=ctx
            )
        except Exception:
            log.exception("dashboard error", extra={"path": request.url.path})
            return self._error(request, client, 503, "Something went wrong on our side.", ctx=ctx)
        return _headers(response)

    def check_csrf(self, ctx: Ctx, expected: str) -> None:
        given = ctx.form.get("csrf", "")
        if (
            not isinstance(given, str)
            or not expected
            or not hmac.compare_digest(given.encode(), expected.encode())
        ):
            raise RequestError(
                403, "This form has expired or did not come from this site. Reload the page."
            )

    def _error(
        self, request: Request, client: str, status: int, detail: str, *, ctx: Ctx | None = None
    ) -> Response:
        ctx = ctx or Ctx(request=request, dash=self, form={}, client=client)
        try:
            response = ctx.render("error.html", status=status, status_code=status, detail=detail)
        except Exception:  # the store or a template failing again: a bare page
            log.exception("dashboard error page failed", extra={"path": request.url.path})
            response = HTMLResponse("Service unavailable", status_code=503)
        if status == 503:
            response.headers["Retry-After"] = "5"
        return _headers(response)

    # -- sessions -----------------------------------------------------------------------------
    def _sign_in(self, ctx: Ctx) -> bool:
        """Load the session of the request's cookie; False when there is none that counts."""
        found = self.session_of(ctx, stage="signed_in")
        if found is None:
            return False
        ctx.session, ctx.user = found
        self._choose_account(ctx)
        return True

    def session_of(self, ctx: Ctx, *, stage: str) -> tuple[UserSession, User] | None:
        token = ctx.request.cookies.get(SESSION_COOKIE, "")
        if not token or len(token) > 200:
            return None
        sid = session_id(token)
        session = self.store.sessions.get(sid)
        if session is None or session.stage != stage:
            return None
        now = self.clock.now()
        idle = SECOND_FACTOR_SECONDS if stage == "second_factor" else IDLE_SECONDS
        if now - session.seen_at > idle or now - session.created_at > ABSOLUTE_SECONDS:
            self.store.sessions.end(sid)
            ctx.set_cookie(SESSION_COOKIE, "", None)
            return None
        user = self.store.users.get(session.user_id)
        if user is None or user.disabled_at is not None:
            return None
        if now - session.seen_at >= TOUCH_EVERY:
            self.store.sessions.touch(sid)
        return session, user

    def _choose_account(self, ctx: Ctx) -> None:
        user, session = ctx.user, ctx.session
        assert user is not None and session is not None
        if not user.operator:
            ctx.account = self.store.accounts.get(user.account_id or 0)
            return
        ctx.accounts = self.store.accounts.all()
        chosen = session.account_id
        ctx.account = next((a for a in ctx.accounts if a.id == chosen), None) or (
            ctx.accounts[0] if ctx.accounts else None
        )

    def start_session(self, ctx: Ctx, user: User, *, stage: str) -> UserSession:
        """A new session (and cookie) for ``user``; the request's old session ends."""
        old = ctx.request.cookies.get(SESSION_COOKIE, "")
        if old and len(old) <= 200:
            self.store.sessions.end(session_id(old))
        token = new_token()
        session = self.store.sessions.open(
            user.id, session_id=session_id(token), csrf=new_token(), stage=stage
        )
        ctx.set_cookie(SESSION_COOKIE, token, None)  # a browser-session cookie; the store ends it
        return session


def _headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


async def _read_form(request: Request) -> Mapping[str, Any]:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_FORM_BYTES:
        raise RequestError(413, f"The form is larger than {MAX_FORM_BYTES // (1024 * 1024)} MB.")
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype not in ("application/x-www-form-urlencoded", "multipart/form-data"):
        return {}
    try:
        form: FormData = await request.form(
            max_files=1, max_fields=200, max_part_size=MAX_FORM_BYTES
        )
    except ClientDisconnect:
        raise
    except Exception:
        raise RequestError(400, "The form could not be read.") from None
    values: dict[str, Any] = {}
    for key, value in form.multi_items():
        if key in values:  # repeated fields (checkboxes) become lists
            prior = values[key]
            values[key] = [*prior, value] if isinstance(prior, list) else [prior, value]
        else:
            values[key] = value
    if isinstance(values.get("scopes"), str):
        values["scopes"] = [values["scopes"]]
    return values
