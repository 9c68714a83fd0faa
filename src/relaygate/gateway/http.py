"""The HTTP way in: the Starlette app for /v1/*, health, readiness and the OpenAPI document.

Trust: request bodies, headers and paths are stranger-controlled. Bodies are read in chunks and
refused with 413 as soon as they pass the limit (never buffered whole first). Failed API keys
are throttled per client address (``authlimit``: 429 with Retry-After; a correct key always
passes). Every error is a JSON
object with a ``detail`` from our own catalogue; an internal fault answers 503, never 500, and
never the exception's text.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from relaygate.clock import SystemClock, iso
from relaygate.errors import IdempotentReplay, LimitExceeded, RequestError, StoreUnavailable
from relaygate.gateway.admission import Admission, check_key
from relaygate.gateway.authlimit import FailedAuthThrottle
from relaygate.gateway.manageapi import ManagementApi
from relaygate.gateway.openapi import openapi_document
from relaygate.idn import address_key
from relaygate.metrics import Metrics
from relaygate.policy import Limits
from relaygate.store import Store
from relaygate.store.models import Account, ApiKey, Outcome
from relaygate.store.states import message_state

log = logging.getLogger("relaygate.http")

Handler = Callable[[Request], Awaitable[Response]]
MESSAGE_STATES = (
    "queued",
    "deferred",
    "delivered",
    "bounced",
    "complained",
    "suppressed",
    "expired",
    "held",
)


def error(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    # a detail may quote the client's text: anything unencodable (a lone surrogate) as an escape
    shown = detail.encode("utf-8", "backslashreplace").decode("utf-8")
    return JSONResponse({"detail": shown}, status_code=status, headers=headers)


def limit_headers(limits: Limits) -> dict[str, str]:
    """``X-RateLimit-*`` for an answer, from the limits its admission saw."""
    return _rate_headers(limits.rate_limit, limits.rate_remaining, limits.rate_reset)


def refusal_headers(exc: LimitExceeded) -> dict[str, str]:
    """``X-RateLimit-*`` and ``Retry-After`` for a 429."""
    return _rate_headers(exc.limit, exc.remaining, 1, retry_after=exc.retry_after)


def _rate_headers(
    limit: int, remaining: int, reset: int, *, retry_after: int | None = None
) -> dict[str, str]:
    headers = {
        "X-RateLimit-Limit": str(limit),
        "X-RateLimit-Remaining": str(max(0, remaining)),
        "X-RateLimit-Reset": str(reset),
    }
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return headers


def guarded(handler: Handler) -> Handler:
    """Map every failure to the contract: RequestError → its status; store trouble or a bug → 503."""

    async def wrapper(request: Request) -> Response:
        try:
            return await handler(request)
        except LimitExceeded as exc:
            return error(exc.status, exc.detail, {**refusal_headers(exc), **exc.headers})
        except RequestError as exc:
            return error(exc.status, exc.detail, exc.headers or None)
        except ClientDisconnect:  # gone mid-body (or closed by the idle timeout): nobody to answer
            log.info("client disconnected", extra={"path": request.url.path})
            return error(400, "the client disconnected before its request was complete")
        except StoreUnavailable:
            log.warning("store unavailable", extra={"path": request.url.path})
            return error(
                503, "the spool cannot accept requests right now; retry later", {"Retry-After": "5"}
            )
        except Exception:
            log.exception("internal error", extra={"path": request.url.path})
            return error(503, "internal error; retry later", {"Retry-After": "5"})

    return wrapper


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise RequestError(400, "invalid Content-Length")
        if int(declared) > limit:
            raise RequestError(413, f"request body is larger than {limit} bytes")
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestError(413, f"request body is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json(raw: bytes) -> Any:
    if not raw.strip():
        raise RequestError(400, "request body is empty; send a JSON object")
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        raise RequestError(400, "request body is not valid JSON") from None


class HttpApi:
    def __init__(
        self,
        *,
        store: Store,
        admission: Admission,
        max_request_bytes: int,
        ready: Callable[[], Awaitable[bool]] | None = None,
        extra_routes: Sequence[BaseRoute] = (),
        metrics: Metrics | None = None,
        sync_deliver: Callable[[str], Awaitable[list[Outcome]]] | None = None,
        auth_throttle: FailedAuthThrottle | None = None,
    ) -> None:
        self.metrics = metrics
        self.auth_throttle = auth_throttle or FailedAuthThrottle(SystemClock())
        self.sync_deliver = sync_deliver
        self.store = store
        self.admission = admission
        self.max_request_bytes = max_request_bytes
        self.ready = ready or store.probe
        self.extra_routes = list(extra_routes)

    def authenticate(self, request: Request) -> tuple[ApiKey, Account]:
        secret = request.headers.get("x-api-key", "")
        if not secret:
            raise RequestError(401, "missing X-API-Key header")
        found = self.store.keys.authenticate(secret.strip())
        if found is None:
            # Counted per client address; a correct key is never refused (see authlimit).
            wait = self.auth_throttle.failed(request.client.host if request.client else "")
            if wait:
                raise RequestError(
                    429,
                    "too many failed authentication attempts from this address; retry later",
                    headers={"Retry-After": str(math.ceil(wait))},
                )
            raise RequestError(401, "unknown or revoked API key")
        return found

    async def send(self, request: Request) -> Response:
        key, account = self.authenticate(request)
        try:
            check_key(key, account, "email:send")
            raw = await read_body(request, self.max_request_bytes)
            idem_key = request.headers.get("idempotency-key")
            idempotency = None
            if idem_key is not None:
                if not 1 <= len(idem_key) <= 255 or not idem_key.isprintable():
                    raise RequestError(400, "Idempotency-Key must be 1-255 printable characters")
                idempotency = (idem_key, hashlib.sha256(raw).hexdigest())
            body = parse_json(raw)
            try:
                accepted = await self.admission.send(key, account, body, idempotency=idempotency)
            except IdempotentReplay as replay:
                limits = await run_in_threadpool(self.store.usage.current_limits, account)
                return JSONResponse(
                    {"id": replay.message_id, "status": "queued"},
                    headers={
                        **limit_headers(limits),
                        "Idempotent-Replayed": "true",
                    },
                )
        except RequestError as exc:
            if not isinstance(exc, LimitExceeded):
                limits = await run_in_threadpool(self.store.usage.current_limits, account)
                exc.headers = {**limit_headers(limits), **exc.headers}
            raise
        if self.sync_deliver is not None:
            outcomes = await self.sync_deliver(accepted.id)
            refused = [o for o in outcomes if o.state != "delivered"]
            if refused:
                raise RequestError(
                    502,
                    f"upstream relay refused the message ({accepted.id}, not retried): {refused[0].response[:300]}",
                    headers=limit_headers(accepted.limits),
                )
            return JSONResponse(
                {"id": accepted.id, "status": "queued"}, headers=limit_headers(accepted.limits)
            )
        return JSONResponse(
            {"id": accepted.id, "status": "queued"}, headers=limit_headers(accepted.limits)
        )

    async def get_message(self, request: Request) -> Response:
        key, account = self.authenticate(request)
        check_key(key, account, "email:read")
        found = await run_in_threadpool(
            self.store.messages.get, request.path_params["id"], account_id=account.id
        )
        if found is None:
            raise RequestError(404, "message not found")
        return JSONResponse(present_message(found))

    async def list_messages(self, request: Request) -> Response:
        key, account = self.authenticate(request)
        check_key(key, account, "email:read")
        q = request.query_params
        limit_text = q.get("limit", "50")
        if not limit_text.isdigit() or not 1 <= int(limit_text) <= 200:
            raise RequestError(400, "limit must be an integer from 1 to 200")
        status = q.get("status") or None
        if status is not None and status not in MESSAGE_STATES:
            raise RequestError(400, f"status must be one of {', '.join(MESSAGE_STATES)}")
        since = None
        if q.get("since"):
            try:
                since = datetime.fromisoformat(q["since"].replace("Z", "+00:00")).timestamp()
            except ValueError:
                raise RequestError(
                    400, "since must be an ISO 8601 timestamp, e.g. 2026-05-19T13:42:11Z"
                ) from None
        before = None
        if q.get("cursor"):
            try:
                created, _, mid = (
                    base64.urlsafe_b64decode(q["cursor"] + "==").decode().partition("|")
                )
                before = (float(created), mid)
            except (ValueError, binascii.Error, UnicodeDecodeError):
                raise RequestError(400, "cursor is not valid") from None
        limit = int(limit_text)
        rows = await run_in_threadpool(
            self.store.messages.search,
            account.id,
            tag=q.get("tag") or None,
            status=status,
            recipient=_search_address(q.get("recipient") or ""),
            since=since,
            limit=limit,
            before=before,
        )
        items = [
            {
                "id": r.id,
                "from": r.from_addr,
                "subject": r.subject,
                "tags": list(r.tags),
                "created_at": iso(r.created_at),
                "status": message_state(r.states),
            }
            for r in rows
        ]
        cursor = None
        if len(rows) == limit:
            last = rows[-1]
            cursor = (
                base64.urlsafe_b64encode(f"{last.created_at!r}|{last.id}".encode())
                .decode()
                .rstrip("=")
            )
        return JSONResponse({"data": items, "next_cursor": cursor})

    async def list_suppressions(self, request: Request) -> Response:
        key, account = self.authenticate(request)
        check_key(key, account, "email:read")
        limit_text = request.query_params.get("limit", "100")
        if not limit_text.isdigit() or not 1 <= int(limit_text) <= 1000:
            raise RequestError(400, "limit must be an integer from 1 to 1000")
        after = request.query_params.get("cursor", "")
        rows = await run_in_threadpool(
            self.store.suppressions.all, account.id, limit=int(limit_text), after=after
        )
        items = [
            {
                "address": r.address,
                "reason": r.reason,
                "bounce_type": r.bounce_type,
                "source": r.source,
                "created_at": iso(r.created_at),
            }
            for r in rows
        ]
        cursor = items[-1]["address"] if len(items) == int(limit_text) else None
        return JSONResponse({"data": items, "next_cursor": cursor})

    async def healthz(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        if await self.ready():
            return JSONResponse({"status": "ready"})
        return JSONResponse({"status": "not ready"}, status_code=503)

    async def metrics_endpoint(self, request: Request) -> Response:
        if self.metrics is None:
            raise RequestError(404, "metrics are not enabled")
        body, ctype = await run_in_threadpool(self.metrics.render, request.headers.get("accept"))
        return Response(body, media_type=ctype)

    async def openapi(self, request: Request) -> Response:
        return JSONResponse(openapi_document())

    def app(self) -> Starlette:
        send = guarded(self.send)
        routes: list[BaseRoute] = [
            Route("/v1/send", send, methods=["POST"]),
            Route("/v1/messages", guarded(self.list_messages), methods=["GET"]),
            Route("/v1/messages/{id}", guarded(self.get_message), methods=["GET"]),
            Route("/v1/suppressions", guarded(self.list_suppressions), methods=["GET"]),
            *ManagementApi(
                store=self.store,
                settings=self.admission.settings,
                renderer=self.admission.renderer,
                authenticate=self.authenticate,
                read_body=read_body,
                parse_json=parse_json,
                max_request_bytes=self.max_request_bytes,
            ).routes(guarded),
            Route("/healthz", guarded(self.healthz), methods=["GET"]),
            Route("/readyz", guarded(self.readyz), methods=["GET"]),
            Route("/openapi.json", guarded(self.openapi), methods=["GET"]),
            Route("/metrics", guarded(self.metrics_endpoint), methods=["GET"]),
            *self.extra_routes,
        ]
        return _App(
            send,
            routes=routes,
            exception_handlers={404: _not_found, 405: _not_allowed, 500: _internal},
        )


def metrics_app(metrics: Metrics) -> Starlette:
    """The listener of a process without the HTTP API (``[metrics] listen``): its own
    ``GET /metrics`` and ``GET /healthz``, nothing else."""

    async def endpoint(request: Request) -> Response:
        body, ctype = await run_in_threadpool(metrics.render, request.headers.get("accept"))
        return Response(body, media_type=ctype)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[
            Route("/metrics", guarded(endpoint), methods=["GET"]),
            Route("/healthz", guarded(healthz), methods=["GET"]),
        ],
        exception_handlers={404: _not_found, 405: _not_allowed, 500: _internal},
    )


class _App(Starlette):
    """Starlette, with ``POST /v1/send`` (the hot path) handed straight to its handler.

    The handler is ``guarded`` (every failure becomes a contract answer), so the middleware stack
    and router add nothing on that path but ~10 % of its CPU; every other request goes through them.
    """

    def __init__(self, send_handler: Handler, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._send_handler = send_handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == "/v1/send":
            scope["app"] = self
            response = await self._send_handler(Request(scope, receive))
            await response(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


async def _not_found(request: Request, exc: Exception) -> Response:
    return error(404, "not found")


async def _not_allowed(request: Request, exc: Exception) -> Response:
    return error(405, "method not allowed")


async def _internal(request: Request, exc: Exception) -> Response:
    return error(503, "internal error; retry later", {"Retry-After": "5"})


def present_message(m: dict[str, Any]) -> dict[str, Any]:
    from relaygate.clock import iso

    def event(e: Any) -> dict[str, Any]:
        return {"type": e.type, "state": e.state_to, "at": iso(e.created_at), "data": e.data}

    return {
        "id": m["id"],
        "from": m["from"],
        "subject": m["subject"],
        "message_id": m["message_id"],
        "tags": m["tags"],
        "created_at": iso(m["created_at"]),
        "channel": m["channel"],
        "status": message_state([r["state"] for r in m["recipients"]]),
        "recipients": [
            {
                "address": r["address"],
                "kind": r["kind"],
                "state": "queued" if r["state"] == "active" else r["state"],
                "attempts": r["attempts"],
                "last_response": r["last_response"],
                "events": [event(e) for e in r["events"]],
            }
            for r in m["recipients"]
        ],
    }


def _search_address(value: str) -> str | None:
    """A recipient to search for, in the form recipients are stored in (canonical domain): a
    search for ``sup@Bücher.example`` finds mail sent to ``sup@xn--bcher-kva.example``."""
    if not value:
        return None
    try:
        return address_key(value)
    except ValueError:
        return value.lower()
