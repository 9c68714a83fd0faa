"""The dashboard's routes, and its static files."""

from __future__ import annotations

from importlib import resources

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from relaygate.clock import Clock
from relaygate.dashboard import pages
from relaygate.dashboard.auth import Auth
from relaygate.dashboard.throttle import SignInThrottle
from relaygate.dashboard.web import PREFIX, SECURITY_HEADERS, Ctx, Dashboard
from relaygate.errors import RequestError
from relaygate.settings import Settings
from relaygate.store import Store

_TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".ico": "image/x-icon",
}


def _static() -> dict[str, tuple[bytes, str]]:
    files: dict[str, tuple[bytes, str]] = {}
    for entry in resources.files("relaygate.dashboard").joinpath("static").iterdir():
        suffix = "." + entry.name.rpartition(".")[2]
        if suffix in _TYPES:
            files[entry.name] = (entry.read_bytes(), _TYPES[suffix])
    return files


def dashboard_routes(
    *, store: Store, settings: Settings, clock: Clock, throttle: SignInThrottle | None = None
) -> list[BaseRoute]:
    dash = Dashboard(store=store, settings=settings, clock=clock)
    auth = Auth(dash, throttle or SignInThrottle(clock))
    static = _static()

    async def asset(request: Request) -> Response:
        found = static.get(request.path_params["name"])
        if found is None:
            return HTMLResponse("Not Found", status_code=404, headers=SECURITY_HEADERS)
        body, ctype = found
        headers = {**SECURITY_HEADERS, "Cache-Control": "public, max-age=3600"}
        return Response(body, media_type=ctype, headers=headers)

    def not_found(ctx: Ctx) -> Response:
        raise RequestError(404, "There is no such page.")

    page = dash.page
    return [
        Route(f"{PREFIX}/static/{{name}}", asset, methods=["GET"]),
        Route(f"{PREFIX}/login", page(auth.login_form, signed_in=False), methods=["GET"]),
        Route(f"{PREFIX}/login", page(auth.login, signed_in=False), methods=["POST"]),
        Route(f"{PREFIX}/login/code", page(auth.code_form, signed_in=False), methods=["GET"]),
        Route(f"{PREFIX}/login/code", page(auth.code, signed_in=False), methods=["POST"]),
        Route(f"{PREFIX}/logout", page(auth.logout), methods=["POST"]),
        Route(f"{PREFIX}/password", page(auth.password_form), methods=["GET"]),
        Route(f"{PREFIX}/password", page(auth.change_password), methods=["POST"]),
        Route(f"{PREFIX}/two-factor", page(auth.two_factor_form), methods=["GET"]),
        Route(f"{PREFIX}/two-factor", page(auth.two_factor), methods=["POST"]),
        Route(f"{PREFIX}/switch", page(pages.switch_account, operator=True), methods=["POST"]),
        Route(PREFIX, page(pages.overview), methods=["GET"]),
        Route(f"{PREFIX}/", page(pages.overview), methods=["GET"]),
        Route(f"{PREFIX}/{{rest:path}}", page(not_found), methods=["GET", "POST"]),
    ]
