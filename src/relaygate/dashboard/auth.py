"""Signing in and out, the TOTP step, changing the password, turning two-factor on and off.

The sign-in form is pinned by API.md §12: fields ``email`` and ``password``, a button "Sign in".
Without a session the form's CSRF token is a double submit: a random ``rg_login`` cookie and
the same value in the form. Failed sign-ins are slowed per user and per client address
(``throttle``); an unknown address costs the same argon2 verification as a wrong password.
A new session replaces the request's old one (no fixation); a password change ends every other
session of the user.
"""

from __future__ import annotations

import logging
import math
import urllib.parse

from starlette.responses import Response

from relaygate.dashboard import passwords, totp
from relaygate.dashboard.throttle import SignInThrottle
from relaygate.dashboard.web import (
    LOGIN_COOKIE,
    PREFIX,
    SESSION_COOKIE,
    Ctx,
    Dashboard,
    new_token,
    safe_next,
    session_id,
)
from relaygate.errors import RequestError

log = logging.getLogger("relaygate.dashboard")


class Auth:
    def __init__(self, dash: Dashboard, throttle: SignInThrottle) -> None:
        self.dash = dash
        self.throttle = throttle
        self.guard = totp.TotpGuard()

    # -- sign in ------------------------------------------------------------------------------
    def login_form(self, ctx: Ctx) -> Response:
        if self.dash.session_of(ctx, stage="signed_in") is not None:
            return ctx.redirect(safe_next(ctx.query("next")))
        return self._form(ctx)

    def _form(self, ctx: Ctx, *, status: int = 200, error: str = "", email: str = "") -> Response:
        token = ctx.request.cookies.get(LOGIN_COOKIE, "")
        if not token or len(token) > 100:
            token = new_token()
        ctx.set_cookie(LOGIN_COOKIE, token, 3600)
        return ctx.render(
            "login.html",
            status=status,
            login_csrf=token,
            error=error,
            email=email,
            next=safe_next(ctx.query("next") or ctx.field("next", limit=2000)),
        )

    def login(self, ctx: Ctx) -> Response:
        self.dash.check_csrf(ctx, ctx.request.cookies.get(LOGIN_COOKIE, ""))
        email = ctx.field("email", limit=254).lower()
        password = str(ctx.form.get("password", ""))
        target = safe_next(ctx.field("next", limit=2000))
        if not email or not password:
            return self._form(
                ctx, status=400, error="Enter your e-mail address and password.", email=email
            )
        wait = self.throttle.wait(email, ctx.client)
        if wait > 0:
            response = self._form(
                ctx,
                status=429,
                error=f"Too many failed sign-ins. Try again in {math.ceil(wait)} seconds.",
                email=email,
            )
            response.headers["Retry-After"] = str(math.ceil(wait))
            return response
        user = ctx.store.users.by_email(email)
        usable = user is not None and user.disabled_at is None
        if not passwords.check(user.password_hash if usable and user else None, password):
            self.throttle.failed(email, ctx.client)
            log.info("dashboard sign-in failed", extra={"client": ctx.client})
            return self._form(
                ctx, status=400, error="Wrong e-mail address or password.", email=email
            )
        assert user is not None
        self.throttle.succeeded(email)
        if passwords.needs_rehash(user.password_hash):
            ctx.store.users.set_password(user.id, passwords.hash_password(password))
        if user.totp_secret:
            self.dash.start_session(ctx, user, stage="second_factor")
            return ctx.redirect(f"{PREFIX}/login/code?next={urllib.parse.quote(target, safe='/')}")
        self.dash.start_session(ctx, user, stage="signed_in")
        ctx.store.users.signed_in(user.id)
        log.info("dashboard sign-in", extra={"user_id": user.id, "client": ctx.client})
        return ctx.redirect(target)

    def code_form(self, ctx: Ctx) -> Response:
        found = self.dash.session_of(ctx, stage="second_factor")
        if found is None:
            return ctx.redirect(f"{PREFIX}/login", notice="expired")
        return ctx.render(
            "code.html", error="", next=safe_next(ctx.query("next")), pending=found[0]
        )

    def code(self, ctx: Ctx) -> Response:
        found = self.dash.session_of(ctx, stage="second_factor")
        if found is None:
            return ctx.redirect(f"{PREFIX}/login", notice="expired")
        session, user = found
        self.dash.check_csrf(ctx, session.csrf)
        target = safe_next(ctx.field("next", limit=2000))
        wait = self.throttle.wait(user.email, ctx.client)
        if wait > 0:
            error = f"Too many wrong codes. Try again in {math.ceil(wait)} seconds."
            response = ctx.render(
                "code.html", status=429, error=error, next=target, pending=session
            )
            response.headers["Retry-After"] = str(math.ceil(wait))
            return response
        step = totp.verify(user.totp_secret, ctx.field("code", limit=20), ctx.now)
        if step is None or not self.guard.accept(user.id, step):
            self.throttle.failed(user.email, ctx.client)
            return ctx.render(
                "code.html",
                status=400,
                error="That code is not right.",
                next=target,
                pending=session,
            )
        self.throttle.succeeded(user.email)
        token = new_token()
        if (
            ctx.store.sessions.promote(session.id, new_id=session_id(token), csrf=new_token())
            is None
        ):
            return ctx.redirect(f"{PREFIX}/login", notice="expired")
        ctx.set_cookie(SESSION_COOKIE, token, None)
        ctx.store.users.signed_in(user.id)
        log.info("dashboard sign-in", extra={"user_id": user.id, "client": ctx.client})
        return ctx.redirect(target)

    def logout(self, ctx: Ctx) -> Response:
        assert ctx.session is not None
        ctx.store.sessions.end(ctx.session.id)
        ctx.set_cookie(SESSION_COOKIE, "", None)
        return ctx.redirect(f"{PREFIX}/login", notice="signed-out")

    # -- the user's own settings --------------------------------------------------------------
    def password_form(self, ctx: Ctx) -> Response:
        return ctx.render("password.html", error="")

    def change_password(self, ctx: Ctx) -> Response:
        user, session = ctx.user, ctx.session
        assert user is not None and session is not None
        current = str(ctx.form.get("current_password", ""))
        new = str(ctx.form.get("new_password", ""))
        again = str(ctx.form.get("confirm_password", ""))
        if not passwords.check(user.password_hash, current):
            return ctx.render(
                "password.html", status=400, error="Your current password is not right."
            )
        if new != again:
            return ctx.render("password.html", status=400, error="The two new passwords differ.")
        try:
            passwords.check_new(new, email=user.email)
        except RequestError as exc:
            return ctx.render("password.html", status=400, error=exc.detail.capitalize() + ".")
        ctx.store.users.set_password(user.id, passwords.hash_password(new))
        ctx.store.sessions.end_all_of(user.id, but=session.id)
        log.info("dashboard password changed", extra={"user_id": user.id})
        return ctx.redirect(f"{PREFIX}/password", notice="password-changed")

    def two_factor_form(self, ctx: Ctx) -> Response:
        assert ctx.user is not None
        return self._two_factor(ctx, secret=totp.new_secret())

    def _two_factor(self, ctx: Ctx, *, secret: str, status: int = 200, error: str = "") -> Response:
        assert ctx.user is not None
        return ctx.render(
            "two_factor.html",
            status=status,
            error=error,
            enabled=bool(ctx.user.totp_secret),
            secret=secret,
            uri=totp.otpauth_uri(secret, account=ctx.user.email),
        )

    def two_factor(self, ctx: Ctx) -> Response:
        user = ctx.user
        assert user is not None
        if not passwords.check(user.password_hash, str(ctx.form.get("password", ""))):
            return self._two_factor(
                ctx,
                secret=ctx.field("secret", limit=64) or totp.new_secret(),
                status=400,
                error="Your password is not right.",
            )
        if ctx.field("action") == "off":
            ctx.store.users.set_totp(user.id, "")
            return ctx.redirect(f"{PREFIX}/two-factor", notice="two-factor-off")
        secret = ctx.field("secret", limit=64)
        step = totp.verify(secret, ctx.field("code", limit=20), ctx.now)
        if step is None:
            return self._two_factor(
                ctx,
                secret=secret or totp.new_secret(),
                status=400,
                error="That code is not right: check the time on your phone and try the next one.",
            )
        self.guard.accept(user.id, step)
        ctx.store.users.set_totp(user.id, secret)
        return ctx.redirect(f"{PREFIX}/two-factor", notice="two-factor-on")
