"""The dashboard's routes, and its static files."""

from __future__ import annotations

from importlib import resources

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from relaygate.clock import Clock
from relaygate.compose.renderer import Renderer
from relaygate.dashboard import domains, hooks, keys, library, messages, operator, pages, suppress
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
    *,
    store: Store,
    settings: Settings,
    clock: Clock,
    throttle: SignInThrottle | None = None,
    renderer: Renderer | None = None,
) -> list[BaseRoute]:
    dash = Dashboard(store=store, settings=settings, clock=clock, renderer=renderer)
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
        Route(f"{PREFIX}/keys", page(keys.page), methods=["GET"]),
        Route(f"{PREFIX}/keys", page(keys.create), methods=["POST"]),
        Route(f"{PREFIX}/keys/{{key_id}}/revoke", page(keys.revoke), methods=["POST"]),
        Route(f"{PREFIX}/billing", page(pages.billing), methods=["GET"]),
        Route(f"{PREFIX}/billing", page(pages.change_billing, operator=True), methods=["POST"]),
        Route(f"{PREFIX}/accounts", page(operator.accounts, operator=True), methods=["GET"]),
        Route(f"{PREFIX}/accounts", page(operator.create_account, operator=True), methods=["POST"]),
        Route(f"{PREFIX}/users", page(operator.user_list, operator=True), methods=["GET"]),
        Route(f"{PREFIX}/users", page(operator.create_user, operator=True), methods=["POST"]),
        Route(
            f"{PREFIX}/users/{{user_id:int}}/{{action}}",
            page(operator.set_user_disabled, operator=True),
            methods=["POST"],
        ),
        Route(f"{PREFIX}/queue", page(operator.queue, operator=True), methods=["GET"]),
        Route(f"{PREFIX}/queue", page(operator.queue_action, operator=True), methods=["POST"]),
        Route(f"{PREFIX}/messages", page(messages.search), methods=["GET"]),
        Route(f"{PREFIX}/messages/{{message_id}}", page(messages.show), methods=["GET"]),
        Route(f"{PREFIX}/messages/{{message_id}}/cancel", page(messages.cancel), methods=["POST"]),
        Route(f"{PREFIX}/suppressions", page(suppress.page), methods=["GET"]),
        Route(f"{PREFIX}/suppressions", page(suppress.add), methods=["POST"]),
        Route(f"{PREFIX}/suppressions.csv", page(suppress.export), methods=["GET"]),
        Route(f"{PREFIX}/suppressions/remove", page(suppress.remove), methods=["POST"]),
        Route(f"{PREFIX}/suppressions/import", page(suppress.import_csv), methods=["POST"]),
        Route(f"{PREFIX}/webhooks", page(hooks.page), methods=["GET"]),
        Route(f"{PREFIX}/webhooks", page(hooks.create), methods=["POST"]),
        Route(f"{PREFIX}/webhooks/{{webhook_id}}", page(hooks.show), methods=["GET"]),
        Route(f"{PREFIX}/webhooks/{{webhook_id}}/replay", page(hooks.replay), methods=["POST"]),
        Route(f"{PREFIX}/webhooks/{{webhook_id}}/rotate", page(hooks.rotate), methods=["POST"]),
        Route(f"{PREFIX}/webhooks/{{webhook_id}}/remove", page(hooks.remove), methods=["POST"]),
        Route(f"{PREFIX}/domains", page(domains.page), methods=["GET"]),
        Route(f"{PREFIX}/domains", page(domains.add), methods=["POST"]),
        Route(f"{PREFIX}/domains/{{domain}}", page(domains.show), methods=["GET"]),
        Route(f"{PREFIX}/domains/{{domain}}/verify", page(domains.verify), methods=["POST"]),
        Route(f"{PREFIX}/domains/{{domain}}/rotate", page(domains.rotate), methods=["POST"]),
        Route(f"{PREFIX}/templates", page(library.page), methods=["GET"]),
        Route(f"{PREFIX}/templates/clone", page(library.clone), methods=["POST"]),
        Route(f"{PREFIX}/templates/{{slug}}", page(library.edit), methods=["GET"]),
        Route(f"{PREFIX}/templates/{{slug}}", page(library.save), methods=["POST"]),
        Route(f"{PREFIX}/templates/{{slug}}/delete", page(library.delete), methods=["POST"]),
        Route(f"{PREFIX}/templates/{{slug}}/preview", page(library.preview), methods=["GET"]),
        Route(PREFIX, page(pages.overview), methods=["GET"]),
        Route(f"{PREFIX}/", page(pages.overview), methods=["GET"]),
        Route(f"{PREFIX}/{{rest:path}}", page(not_found), methods=["GET", "POST"]),
    ]
