"""The management API (API.md §11): an account's keys, domains, webhooks, templates,
suppressions, messages and audit log over HTTP, for a key with the ``account:admin`` scope.

Each handler is thin: authenticate (401), check the scope (403), count the call against the
account's rate limit (429), parse, run the action of ``relaygate.manage`` off the event loop,
serialise. The actions raise ``relaygate.errors``; ``http.guarded`` turns them into a JSON
``detail`` with their status (another account's object is a 404, never a 403).

Trust: bodies and paths are stranger-controlled; they reach the actions only through
``manage.fields`` checks, and bodies are read with the request size limit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from relaygate.compose.renderer import Renderer
from relaygate.errors import Invalid
from relaygate.manage import ADMIN, Actor, fields
from relaygate.manage import account as account_actions
from relaygate.manage import audit as audit_actions
from relaygate.manage import domains as domain_actions
from relaygate.manage import keys as key_actions
from relaygate.manage import messages as message_actions
from relaygate.manage import suppressions as suppression_actions
from relaygate.manage import templates as template_actions
from relaygate.manage import usage as usage_actions
from relaygate.manage import webhooks as webhook_actions
from relaygate.settings import Settings
from relaygate.store import Store
from relaygate.store.ids import delivery_ref
from relaygate.store.models import Account, ApiKey

T = TypeVar("T")

Authenticate = Callable[[Request], tuple[ApiKey, Account]]
Guard = Callable[[Callable[[Request], Any]], Callable[[Request], Any]]


class ManagementApi:
    """The §11 routes; ``authenticate`` and ``guarded`` are the HTTP API's own."""

    def __init__(
        self,
        *,
        store: Store,
        settings: Settings,
        renderer: Renderer,
        authenticate: Authenticate,
        read_body: Callable[[Request, int], Any],
        parse_json: Callable[[bytes], Any],
        max_request_bytes: int,
    ) -> None:
        self.store = store
        self.settings = settings
        self.renderer = renderer
        self._authenticate = authenticate
        self._read_body = read_body
        self._parse_json = parse_json
        self.max_request_bytes = max_request_bytes

    # -- the steps every handler takes -----------------------------------------------------------
    async def actor(self, request: Request, scope: str = ADMIN) -> Actor:
        """401 without a live key, 403 without ``scope``, 429 over the rate limit."""
        key, account = self._authenticate(request)
        actor = Actor.of_key(key, request.client.host if request.client else "")
        actor.require(scope)
        await self.store.usage.count_request(account.id)
        return actor

    async def body(
        self, request: Request, allowed: tuple[str, ...], *, optional: bool = False
    ) -> dict[str, Any]:
        """The JSON object of the request, with only ``allowed`` fields (``optional``: an
        empty body is ``{}``)."""
        raw = await self._read_body(request, self.max_request_bytes)
        if optional and not raw.strip():
            return {}
        data = self._parse_json(raw)
        if not isinstance(data, dict):
            raise Invalid("body", "request body must be a JSON object")
        fields.only(data, allowed)
        return data

    @staticmethod
    async def call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """An action off the event loop (store calls block)."""
        return await run_in_threadpool(fn, *args, **kwargs)

    # -- account and audit ------------------------------------------------------------------------
    async def get_account(self, request: Request) -> Response:
        actor = await self.actor(request)
        account, limits = await self.call(account_actions.get_account, self.store, actor)
        return JSONResponse(account_actions.account_json(account, limits))

    async def get_usage(self, request: Request) -> Response:
        actor = await self.actor(request)
        days = await self.call(
            usage_actions.usage_days, self.store, actor, request.query_params.get("days")
        )
        return JSONResponse({"data": [usage_actions.usage_json(d) for d in days]})

    async def list_audit(self, request: Request) -> Response:
        actor = await self.actor(request)
        q = request.query_params
        limit = fields.integer(q.get("limit"), "limit", default=50, low=1, high=200)
        entries, cursor = await self.call(
            audit_actions.list_entries, self.store, actor, limit=limit, cursor=q.get("cursor")
        )
        return JSONResponse(
            {"data": [audit_actions.entry_json(e) for e in entries], "next_cursor": cursor}
        )

    # -- keys -------------------------------------------------------------------------------------
    async def list_keys(self, request: Request) -> Response:
        actor = await self.actor(request)
        found = await self.call(key_actions.list_keys, self.store, actor)
        return JSONResponse({"data": [key_actions.key_json(k) for k in found]})

    async def create_key(self, request: Request) -> Response:
        actor = await self.actor(request)
        body = await self.body(request, ("name", "scopes"))
        key, secret = await self.call(
            key_actions.create_key,
            self.store,
            actor,
            name=body.get("name"),
            scopes=body.get("scopes", ["email:send"]),
        )
        return JSONResponse({**key_actions.key_json(key), "key": secret}, status_code=201)

    async def revoke_key(self, request: Request) -> Response:
        actor = await self.actor(request)
        key = await self.call(key_actions.revoke_key, self.store, actor, request.path_params["id"])
        return JSONResponse(key_actions.key_json(key))

    # -- domains ----------------------------------------------------------------------------------
    async def list_domains(self, request: Request) -> Response:
        actor = await self.actor(request)
        found = await self.call(domain_actions.list_domains, self.store, actor)
        return JSONResponse({"data": [domain_actions.domain_json(d) for d in found]})

    async def add_domain(self, request: Request) -> Response:
        actor = await self.actor(request)
        body = await self.body(request, ("domain",))
        setup = await self.call(
            domain_actions.add_domain, self.store, self.settings, actor, body.get("domain")
        )
        return JSONResponse(setup.as_dict(), status_code=201)

    async def read_domain(self, request: Request) -> Response:
        actor = await self.actor(request)
        report = await self.call(
            domain_actions.read_domain,
            self.store,
            self.settings,
            actor,
            request.path_params["domain"],
        )
        return JSONResponse(report.as_dict())

    async def verify_domain(self, request: Request) -> Response:
        actor = await self.actor(request)
        report = await self.call(
            domain_actions.verify_domain,
            self.store,
            self.settings,
            actor,
            request.path_params["domain"],
        )
        return JSONResponse(report.as_dict())

    async def rotate_dkim(self, request: Request) -> Response:
        actor = await self.actor(request)
        rotation = await self.call(
            domain_actions.rotate_dkim,
            self.store,
            self.settings,
            actor,
            request.path_params["domain"],
        )
        return JSONResponse(rotation.as_dict())

    async def delete_domain(self, request: Request) -> Response:
        actor = await self.actor(request)
        domain = await self.call(
            domain_actions.delete_domain, self.store, actor, request.path_params["domain"]
        )
        return JSONResponse({"domain": domain, "deleted": True})

    # -- webhooks ---------------------------------------------------------------------------------
    async def list_webhooks(self, request: Request) -> Response:
        actor = await self.actor(request)
        found = await self.call(webhook_actions.list_webhooks, self.store, actor)
        return JSONResponse({"data": [webhook_actions.webhook_json(w) for w in found]})

    async def create_webhook(self, request: Request) -> Response:
        actor = await self.actor(request)
        body = await self.body(request, ("url", "events"))
        new = await self.call(
            webhook_actions.create_webhook,
            self.store,
            self.settings,
            actor,
            body.get("url"),
            body.get("events"),
        )
        return JSONResponse(
            {
                **webhook_actions.webhook_json(new.webhook),
                "secret": new.secret,
                "warnings": list(new.warnings),
            },
            status_code=201,
        )

    async def get_webhook(self, request: Request) -> Response:
        actor = await self.actor(request)
        webhook_id = request.path_params["id"]
        webhook = await self.call(webhook_actions.get_webhook, self.store, actor, webhook_id)
        counts = await self.call(self.store.webhooks.counts, webhook.id)
        return JSONResponse({**webhook_actions.webhook_json(webhook), "deliveries": counts})

    async def update_webhook(self, request: Request) -> Response:
        actor = await self.actor(request)
        body = await self.body(request, ("url", "events"))
        webhook = await self.call(
            webhook_actions.update_webhook,
            self.store,
            self.settings,
            actor,
            request.path_params["id"],
            url=body.get("url"),
            events=body.get("events"),
        )
        return JSONResponse(webhook_actions.webhook_json(webhook))

    async def delete_webhook(self, request: Request) -> Response:
        actor = await self.actor(request)
        webhook_id = await self.call(
            webhook_actions.delete_webhook, self.store, actor, request.path_params["id"]
        )
        return JSONResponse({"id": webhook_id, "deleted": True})

    async def rotate_webhook_secret(self, request: Request) -> Response:
        actor = await self.actor(request)
        grace = (await self.body(request, ("grace",), optional=True)).get("grace")
        webhook, secret = await self.call(
            webhook_actions.rotate_secret, self.store, actor, request.path_params["id"], grace
        )
        return JSONResponse({**webhook_actions.webhook_json(webhook), "secret": secret})

    async def webhook_attempts(self, request: Request) -> Response:
        actor = await self.actor(request)
        q = request.query_params
        limit = fields.integer(q.get("limit"), "limit", default=50, low=1, high=200)
        found, cursor = await self.call(
            webhook_actions.list_attempts,
            self.store,
            actor,
            request.path_params["id"],
            limit=limit,
            cursor=q.get("cursor"),
        )
        return JSONResponse(
            {"data": [webhook_actions.attempt_json(a) for a in found], "next_cursor": cursor}
        )

    async def replay_webhook(self, request: Request) -> Response:
        actor = await self.actor(request)
        body = await self.body(request, ("attempt_ids", "status"))
        replayed = await self.call(
            webhook_actions.replay,
            self.store,
            actor,
            request.path_params["id"],
            attempt_ids=body.get("attempt_ids"),
            status=body.get("status"),
        )
        return JSONResponse(
            {"replayed": len(replayed), "deliveries": [delivery_ref(d) for d in replayed]}
        )

    # -- templates --------------------------------------------------------------------------------
    async def list_templates(self, request: Request) -> Response:
        actor = await self.actor(request)
        found = await self.call(template_actions.list_templates, self.store, actor)
        return JSONResponse({"data": [{"slug": t.slug, "owner": t.owner} for t in found]})

    async def create_template(self, request: Request) -> Response:
        actor = await self.actor(request)
        body = await self.body(request, ("slug", "subject", "html", "text", "clone_of"))
        if "clone_of" in body:
            fields.only(body, ("slug", "clone_of"))
            made = await self.call(
                template_actions.clone_template,
                self.store,
                actor,
                body.get("clone_of"),
                body.get("slug"),
            )
            return JSONResponse(
                template_actions.template_json(made, f"account {actor.account_id}"),
                status_code=201,
            )
        template = template_actions.new_template(
            body.get("slug"), body.get("subject"), body.get("html"), body.get("text")
        )
        await template_actions.check_template(self.renderer, actor, template)
        await self.call(template_actions.save_template, self.store, actor, template, checked=True)
        return JSONResponse(
            template_actions.template_json(template, f"account {actor.account_id}"),
            status_code=201,
        )

    async def get_template(self, request: Request) -> Response:
        actor = await self.actor(request)
        template, owner = await self.call(
            template_actions.get_template, self.store, actor, request.path_params["slug"]
        )
        return JSONResponse(template_actions.template_json(template, owner))

    async def put_template(self, request: Request) -> Response:
        actor = await self.actor(request)
        body = await self.body(request, ("subject", "html", "text"))
        template = template_actions.new_template(
            request.path_params["slug"], body.get("subject"), body.get("html"), body.get("text")
        )
        await template_actions.check_template(self.renderer, actor, template)
        await self.call(template_actions.save_template, self.store, actor, template, checked=True)
        return JSONResponse(template_actions.template_json(template, f"account {actor.account_id}"))

    async def delete_template(self, request: Request) -> Response:
        actor = await self.actor(request)
        slug = await self.call(
            template_actions.delete_template, self.store, actor, request.path_params["slug"]
        )
        return JSONResponse({"slug": slug, "deleted": True})

    async def render_template(self, request: Request) -> Response:
        actor = await self.actor(request)
        body = await self.body(request, ("variables",), optional=True)
        template, _ = await self.call(
            template_actions.get_template, self.store, actor, request.path_params["slug"]
        )
        rendered = await template_actions.render_preview(
            self.renderer, actor, template, body.get("variables")
        )
        return JSONResponse(
            {"subject": rendered.subject, "html": rendered.html, "text": rendered.text}
        )

    # -- suppressions -----------------------------------------------------------------------------
    async def add_suppression(self, request: Request) -> Response:
        actor = await self.actor(request)
        body = await self.body(request, ("address", "reason"))
        address = await self.call(
            suppression_actions.add_suppression,
            self.store,
            actor,
            body.get("address"),
            body.get("reason"),
        )
        return JSONResponse(
            {"address": address, "reason": body.get("reason") or "manual"}, status_code=201
        )

    async def import_suppressions(self, request: Request) -> Response:
        actor = await self.actor(request)
        if request.headers.get("content-type", "").startswith("application/json"):
            body = await self.body(request, ("csv",))
            raw = fields.text_block(body.get("csv"), "csv").encode("utf-8")
        else:
            raw = await self._read_body(request, self.max_request_bytes)
        result = await self.call(suppression_actions.import_suppressions, self.store, actor, raw)
        return JSONResponse({"added": result.added, "problems": list(result.problems)})

    async def remove_suppression(self, request: Request) -> Response:
        actor = await self.actor(request, "email:send")
        address = await self.call(
            suppression_actions.remove_suppression,
            self.store,
            actor,
            request.path_params["address"],
            scope="email:send",
        )
        return JSONResponse({"address": address, "deleted": True})

    # -- messages ---------------------------------------------------------------------------------
    async def cancel_message(self, request: Request) -> Response:
        actor = await self.actor(request)
        count, message = await self.call(
            message_actions.cancel_message, self.store, actor, request.path_params["id"]
        )
        return JSONResponse(
            {
                "id": message["id"],
                "cancelled": count,
                "recipients": [
                    {"address": r["address"], "state": r["state"]} for r in message["recipients"]
                ],
            }
        )

    async def message_content(self, request: Request) -> Response:
        actor = await self.actor(request)
        content = await self.call(
            message_actions.message_content, self.store, actor, request.path_params["id"]
        )
        return JSONResponse(content)

    # -- the routes -------------------------------------------------------------------------------
    def routes(self, guarded: Guard) -> list[BaseRoute]:
        def r(path: str, handler: Callable[[Request], Any], method: str) -> Route:
            return Route(path, guarded(handler), methods=[method])

        return [
            r("/v1/account", self.get_account, "GET"),
            r("/v1/usage", self.get_usage, "GET"),
            r("/v1/audit", self.list_audit, "GET"),
            r("/v1/keys", self.list_keys, "GET"),
            r("/v1/keys", self.create_key, "POST"),
            r("/v1/keys/{id}", self.revoke_key, "DELETE"),
            r("/v1/domains", self.list_domains, "GET"),
            r("/v1/domains", self.add_domain, "POST"),
            r("/v1/domains/{domain}", self.read_domain, "GET"),
            r("/v1/domains/{domain}", self.delete_domain, "DELETE"),
            r("/v1/domains/{domain}/verify", self.verify_domain, "POST"),
            r("/v1/domains/{domain}/dkim/rotate", self.rotate_dkim, "POST"),
            r("/v1/webhooks", self.list_webhooks, "GET"),
            r("/v1/webhooks", self.create_webhook, "POST"),
            r("/v1/webhooks/{id}", self.get_webhook, "GET"),
            r("/v1/webhooks/{id}", self.update_webhook, "PATCH"),
            r("/v1/webhooks/{id}", self.delete_webhook, "DELETE"),
            r("/v1/webhooks/{id}/rotate-secret", self.rotate_webhook_secret, "POST"),
            r("/v1/webhooks/{id}/attempts", self.webhook_attempts, "GET"),
            r("/v1/webhooks/{id}/replay", self.replay_webhook, "POST"),
            r("/v1/templates", self.list_templates, "GET"),
            r("/v1/templates", self.create_template, "POST"),
            r("/v1/templates/{slug}", self.get_template, "GET"),
            r("/v1/templates/{slug}", self.put_template, "PUT"),
            r("/v1/templates/{slug}", self.delete_template, "DELETE"),
            r("/v1/templates/{slug}/render", self.render_template, "POST"),
            r("/v1/suppressions", self.add_suppression, "POST"),
            r("/v1/suppressions/import", self.import_suppressions, "POST"),
            r("/v1/suppressions/{address}", self.remove_suppression, "DELETE"),
            r("/v1/messages/{id}/cancel", self.cancel_message, "POST"),
            r("/v1/messages/{id}/content", self.message_content, "GET"),
        ]
