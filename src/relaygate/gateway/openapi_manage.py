"""The management API's part of the OpenAPI document (API.md §11): every route with its
request and response schemas, the error answers they may give, and the component schemas."""

from __future__ import annotations

from typing import Any

_S = {"type": "string"}
_I = {"type": "integer"}
_B = {"type": "boolean"}
_TIME = {"type": "string", "format": "date-time", "description": "ISO 8601 UTC with Z"}
_TIME_OR_NULL = {**_TIME, "nullable": True}
_STRINGS = {"type": "array", "items": _S}


def _obj(props: dict[str, Any], required: tuple[str, ...] = (), **extra: Any) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": props, **extra}
    if required:
        schema["required"] = list(required)
    return schema


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _page(item: str) -> dict[str, Any]:
    return _obj(
        {"data": {"type": "array", "items": _ref(item)}, "next_cursor": {**_S, "nullable": True}},
        ("data", "next_cursor"),
    )


_RECORD = {
    "type": _S,
    "name": _S,
    "value": _S,
    "purpose": {"type": "string", "enum": ["verification", "dkim", "spf", "dmarc", "return-path"]},
    "required": _B,
    "note": _S,
    "strings": _STRINGS,
    "zone": _S,
}
_DKIM_KEY = {
    "domain": _S,
    "selector": _S,
    "algorithm": {"type": "string", "enum": ["rsa", "ed25519"]},
    "state": {"type": "string", "enum": ["pending", "active", "retiring", "retired"]},
    "name": _S,
    "value": _S,
    "published": {**_B, "nullable": True},
    "created_at": _TIME,
    "activated_at": _TIME_OR_NULL,
    "retire_after": _TIME_OR_NULL,
}
_EVENT_TYPE = {
    "type": "string",
    "enum": ["delivery", "bounce", "open", "click", "complaint", "domain"],
}
_DOMAIN_STATUS = {
    "type": "string",
    "enum": ["pending", "verified", "at_risk", "failed", "asserted"],
}

SCHEMAS: dict[str, dict[str, Any]] = {
    "DnsRecord": _obj(_RECORD, ("type", "name", "value", "purpose", "required")),
    "CheckedRecord": _obj(
        {
            **_RECORD,
            "check": {"type": "string", "enum": ["found", "missing", "different", "error"]},
            "found": _STRINGS,
        },
        ("type", "name", "value", "purpose", "required", "check", "found"),
    ),
    "DkimKey": _obj(_DKIM_KEY, ("domain", "selector", "algorithm", "state", "name", "value")),
    "DomainRequest": _obj({"domain": _S}, ("domain",), additionalProperties=False),
    "DomainSetup": _obj(
        {
            "id": _I,
            "account_id": _I,
            "kind": _S,
            "value": _S,
            "domain": _S,
            "status": _DOMAIN_STATUS,
            "records": {"type": "array", "items": _ref("DnsRecord")},
            "keys": {"type": "array", "items": _ref("DkimKey")},
        },
        ("domain", "status", "records", "keys"),
    ),
    "Domain": _obj(
        {
            "domain": _S,
            "status": _DOMAIN_STATUS,
            "reason": _S,
            "created_at": _TIME,
            "verified_at": _TIME_OR_NULL,
            "last_checked_at": _TIME_OR_NULL,
        },
        ("domain", "status"),
    ),
    "DomainList": _obj({"data": {"type": "array", "items": _ref("Domain")}}, ("data",)),
    "DomainReport": _obj(
        {
            "domain": _S,
            "status": _DOMAIN_STATUS,
            "previous_status": _DOMAIN_STATUS,
            "reason": _S,
            "temporary_failure": _B,
            "checked_at": _TIME,
            "records": {"type": "array", "items": _ref("CheckedRecord")},
            "warnings": _STRINGS,
        },
        ("domain", "status", "records"),
    ),
    "DkimRotation": _obj(
        {
            "domain": _S,
            "created": {"type": "array", "items": _ref("DkimKey")},
            "already_pending": {"type": "array", "items": _ref("DkimKey")},
            "records": {"type": "array", "items": _ref("DnsRecord")},
        },
        ("domain", "created", "already_pending", "records"),
    ),
    "DomainDeleted": _obj({"domain": _S, "deleted": _B}, ("domain", "deleted")),
    "Webhook": _obj(
        {
            "id": _S,
            "account_id": _I,
            "url": _S,
            "events": {"type": "array", "items": _EVENT_TYPE},
            "created_at": _TIME,
            "previous_secret_expires_at": _TIME_OR_NULL,
        },
        ("id", "account_id", "url", "events", "created_at"),
    ),
    "WebhookList": _obj({"data": {"type": "array", "items": _ref("Webhook")}}, ("data",)),
    "WebhookRequest": _obj(
        {
            "url": {
                **_S,
                "description": "https URL (http and private addresses only when allowed)",
            },
            "events": {
                "type": "array",
                "items": _EVENT_TYPE,
                "description": "event types to receive; empty or absent: all",
            },
        },
        ("url",),
        additionalProperties=False,
    ),
    "WebhookPatch": _obj(
        {"url": _S, "events": {"type": "array", "items": _EVENT_TYPE}},
        additionalProperties=False,
    ),
    "NewWebhook": {
        "allOf": [
            _ref("Webhook"),
            _obj(
                {"secret": {**_S, "description": "shown once"}, "warnings": _STRINGS},
                ("secret", "warnings"),
            ),
        ]
    },
    "WebhookDetail": {
        "allOf": [
            _ref("Webhook"),
            _obj(
                {
                    "deliveries": _obj(
                        {s: _I for s in ("pending", "active", "succeeded", "abandoned")}
                    )
                },
                ("deliveries",),
            ),
        ]
    },
    "WebhookDeleted": _obj({"id": _S, "deleted": _B}, ("id", "deleted")),
    "RotateSecretRequest": _obj(
        {"grace": {"type": "integer", "minimum": 0, "maximum": 2592000, "description": "seconds"}},
        additionalProperties=False,
    ),
    "RotatedSecret": {
        "allOf": [
            _ref("Webhook"),
            _obj({"secret": {**_S, "description": "shown once"}}, ("secret",)),
        ]
    },
    "Attempt": _obj(
        {
            "id": _I,
            "delivery_id": _S,
            "attempt": _I,
            "at": _TIME,
            "status": {**_I, "nullable": True, "description": "HTTP status"},
            "outcome": _S,
            "error": _S,
            "duration_ms": _I,
            "response": {**_S, "description": "the first 512 bytes of the response"},
            "next_attempt_at": _TIME_OR_NULL,
        },
        ("id", "delivery_id", "attempt", "at", "status", "error", "response", "next_attempt_at"),
    ),
    "AttemptPage": _page("Attempt"),
    "ReplayRequest": _obj(
        {
            "attempt_ids": {"type": "array", "items": _I},
            "status": {"type": "string", "enum": ["abandoned"]},
        },
        additionalProperties=False,
        description="either attempt_ids or status",
    ),
    "TemplateList": _obj(
        {
            "data": {
                "type": "array",
                "items": _obj(
                    {"slug": _S, "owner": {**_S, "description": "system or account <id>"}},
                    ("slug", "owner"),
                ),
            }
        },
        ("data",),
    ),
    "Template": _obj(
        {"slug": _S, "owner": _S, "subject": _S, "html": _S, "text": _S},
        ("slug", "owner", "subject", "html", "text"),
    ),
    "TemplateRequest": _obj(
        {
            "slug": {**_S, "pattern": "^[a-z0-9][a-z0-9_-]{0,63}$"},
            "subject": {**_S, "maxLength": 2048, "description": "Jinja2"},
            "html": {**_S, "description": "Jinja2"},
            "text": {**_S, "description": "Jinja2; blank: made from the HTML"},
            "clone_of": {
                **_S,
                "description": "a system template's slug: copy it (with slug, subject, html and"
                " text absent but slug)",
            },
        },
        ("slug",),
        additionalProperties=False,
    ),
    "TemplatePut": _obj(
        {"subject": _S, "html": _S, "text": _S}, ("subject",), additionalProperties=False
    ),
    "TemplateDeleted": _obj({"slug": _S, "deleted": _B}, ("slug", "deleted")),
    "RenderRequest": _obj({"variables": {"type": "object"}}, additionalProperties=False),
    "Rendered": _obj({"subject": _S, "html": _S, "text": _S}, ("subject", "html", "text")),
    "Replayed": _obj({"replayed": _I, "deliveries": _STRINGS}, ("replayed", "deliveries")),
    "Account": _obj(
        {
            "id": _I,
            "name": _S,
            "plan": {"type": "string", "enum": ["free", "trial", "paid"]},
            "daily_quota": _I,
            "rate_limit": _I,
            "track_opens": _B,
            "track_clicks": _B,
            "created_at": _TIME,
            "today": _obj({"used": _I, "remaining": _I}, ("used", "remaining")),
        },
        ("id", "name", "plan", "daily_quota", "rate_limit", "today"),
    ),
    "UsageDay": _obj(
        {
            "day": {**_S, "format": "date", "description": "UTC day"},
            **{
                n: {**_I, "description": d}
                for n, d in (
                    ("accepted", "recipients admitted to the queue"),
                    ("delivered", "recipients delivered"),
                    ("deferred", "recipients deferred (the first time)"),
                    ("bounced", "recipients bounced (hard, soft, expired)"),
                    ("complained", "complaints"),
                    ("suppressed", "recipients refused as suppressed"),
                    ("opened", "recipients who opened (first human open)"),
                    ("clicked", "recipients who clicked (first human click)"),
                )
            },
        },
        (
            "day",
            "accepted",
            "delivered",
            "deferred",
            "bounced",
            "complained",
            "suppressed",
            "opened",
            "clicked",
        ),
    ),
    "UsageList": _obj({"data": {"type": "array", "items": _ref("UsageDay")}}, ("data",)),
    "Key": _obj(
        {
            "id": _S,
            "account_id": _I,
            "name": _S,
            "scopes": _STRINGS,
            "hint": _S,
            "created_at": _TIME,
            "revoked": _B,
            "revoked_at": _TIME_OR_NULL,
        },
        ("id", "account_id", "name", "scopes", "hint", "created_at", "revoked"),
    ),
    "NewKey": {
        "allOf": [
            _ref("Key"),
            _obj({"key": {**_S, "description": "the secret, shown once"}}, ("key",)),
        ]
    },
    "KeyList": _obj({"data": {"type": "array", "items": _ref("Key")}}, ("data",)),
    "KeyRequest": _obj(
        {
            "name": {**_S, "maxLength": 200},
            "scopes": {
                "type": "array",
                "items": {"type": "string", "enum": ["email:send", "email:read", "account:admin"]},
                "description": "only scopes the calling key holds; default [email:send]",
            },
        },
        additionalProperties=False,
    ),
    "AuditEntry": _obj(
        {
            "id": _I,
            "actor": {**_S, "description": "key:<id>, user:<id> or cli"},
            "action": _S,
            "target": _S,
            "address": _S,
            "at": _TIME,
            "detail": {"type": "object"},
        },
        ("id", "actor", "action", "target", "address", "at"),
    ),
    "AuditPage": _page("AuditEntry"),
    "SuppressionRequest": _obj(
        {"address": _S, "reason": {**_S, "maxLength": 200}},
        ("address",),
        additionalProperties=False,
    ),
    "SuppressionAdded": _obj({"address": _S, "reason": _S}, ("address", "reason")),
    "SuppressionRemoved": _obj({"address": _S, "deleted": _B}, ("address", "deleted")),
    "SuppressionImportJson": _obj(
        {"csv": {**_S, "description": "rows of address,reason"}},
        ("csv",),
        additionalProperties=False,
    ),
    "SuppressionImport": _obj({"added": _I, "problems": _STRINGS}, ("added", "problems")),
    "Cancelled": _obj(
        {
            "id": _S,
            "cancelled": _I,
            "recipients": {
                "type": "array",
                "items": _obj({"address": _S, "state": _S}, ("address", "state")),
            },
        },
        ("id", "cancelled", "recipients"),
    ),
    "MessageContent": _obj(
        {
            "id": _S,
            "size": _I,
            "headers": {"type": "array", "items": {"type": "array", "items": _S}},
            "parts": {
                "type": "array",
                "items": _obj(
                    {
                        "type": _S,
                        "size": _I,
                        "filename": {**_S, "nullable": True},
                        "charset": {**_S, "nullable": True},
                        "text": _S,
                    },
                    ("type", "size"),
                ),
            },
        },
        ("id", "size", "headers", "parts"),
    ),
}


def _err(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref("Error")}}}


def _operation(
    summary: str,
    response: str,
    *,
    status: str = "200",
    request: str | None = None,
    params: tuple[str, ...] = (),
    query: tuple[tuple[str, dict[str, Any]], ...] = (),
    errors: tuple[str, ...] = (),
    scope: str = "account:admin",
    extra_request: dict[str, Any] | None = None,
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "security": [{"ApiKey": []}],
        "description": f"Needs a key with the {scope} scope.",
        "responses": {
            status: {
                "description": summary,
                "content": {"application/json": {"schema": _ref(response)}},
            },
            "401": _err("Missing, unknown or revoked X-API-Key"),
            "403": _err(f"The key lacks {scope}"),
            "429": _err("Rate limit exceeded (Retry-After)"),
            "503": _err("Store unavailable; retry later"),
        },
    }
    for code in errors:
        op["responses"][code] = _err(
            {
                "400": "Validation failed (the detail names the field)",
                "404": "Not found in this account",
                "409": "Conflict",
                "413": "Request too large",
            }[code]
        )
    parameters = [{"name": p, "in": "path", "required": True, "schema": _S} for p in params] + [
        {"name": n, "in": "query", "required": False, "schema": s} for n, s in query
    ]
    if parameters:
        op["parameters"] = parameters
    if request is not None:
        content = {"application/json": {"schema": _ref(request)}}
        content.update(extra_request or {})
        op["requestBody"] = {"required": True, "content": content}
    return op


_LIMIT = ("limit", {"type": "integer", "minimum": 1, "maximum": 200})
_CURSOR = ("cursor", _S)


def paths() -> dict[str, dict[str, Any]]:
    """The management routes, by path and method."""
    return {
        "/v1/account": {
            "get": _operation("The account: plan, limits, today's use", "Account"),
        },
        "/v1/usage": {
            "get": _operation(
                "Per UTC day, oldest first, counted in recipients",
                "UsageList",
                query=(("days", {"type": "integer", "minimum": 1, "maximum": 90, "default": 30}),),
                errors=("400",),
            ),
        },
        "/v1/audit": {
            "get": _operation(
                "Management actions, newest first, cursor-paged",
                "AuditPage",
                query=(_LIMIT, _CURSOR),
                errors=("400",),
            ),
        },
        "/v1/keys": {
            "get": _operation("The account's API keys (never a secret)", "KeyList"),
            "post": _operation(
                "Create a key (the secret is shown once, in key)",
                "NewKey",
                status="201",
                request="KeyRequest",
                errors=("400",),
            ),
        },
        "/v1/keys/{id}": {
            "delete": _operation("Revoke a key", "Key", params=("id",), errors=("404",)),
        },
        "/v1/domains": {
            "get": _operation("The account's sending domains", "DomainList"),
            "post": _operation(
                "Add a domain: its status and the DNS records to publish",
                "DomainSetup",
                status="201",
                request="DomainRequest",
                errors=("400", "409"),
            ),
        },
        "/v1/domains/{domain}": {
            "get": _operation(
                "The domain's status, each record looked up now (found, missing, different)",
                "DomainReport",
                params=("domain",),
                errors=("404",),
            ),
            "delete": _operation(
                "Remove the domain (mail from it is refused from then on)",
                "DomainDeleted",
                params=("domain",),
                errors=("404",),
            ),
        },
        "/v1/domains/{domain}/verify": {
            "post": _operation(
                "Check the DNS records now and move the domain's state",
                "DomainReport",
                params=("domain",),
                errors=("404",),
            ),
        },
        "/v1/domains/{domain}/dkim/rotate": {
            "post": _operation(
                "Start a DKIM key rotation (signing switches once the new record is published)",
                "DkimRotation",
                params=("domain",),
                errors=("404", "409"),
            ),
        },
        "/v1/webhooks": {
            "get": _operation("The account's webhook endpoints (never a secret)", "WebhookList"),
            "post": _operation(
                "Register an endpoint (its secret is shown once)",
                "NewWebhook",
                status="201",
                request="WebhookRequest",
                errors=("400",),
            ),
        },
        "/v1/webhooks/{id}": {
            "get": _operation(
                "An endpoint and its delivery counts",
                "WebhookDetail",
                params=("id",),
                errors=("404",),
            ),
            "patch": _operation(
                "Change the URL or the event types",
                "Webhook",
                params=("id",),
                request="WebhookPatch",
                errors=("400", "404"),
            ),
            "delete": _operation(
                "Remove the endpoint (its pending deliveries are abandoned)",
                "WebhookDeleted",
                params=("id",),
                errors=("404",),
            ),
        },
        "/v1/webhooks/{id}/rotate-secret": {
            "post": _operation(
                "A new secret (shown once); the old one keeps signing for grace seconds",
                "RotatedSecret",
                params=("id",),
                request="RotateSecretRequest",
                errors=("400", "404"),
            ),
        },
        "/v1/webhooks/{id}/attempts": {
            "get": _operation(
                "The attempt log, newest first: time, HTTP status, error, response, next try",
                "AttemptPage",
                params=("id",),
                query=(_LIMIT, _CURSOR),
                errors=("400", "404"),
            ),
        },
        "/v1/webhooks/{id}/replay": {
            "post": _operation(
                "Send again the deliveries of chosen attempts, or every abandoned one",
                "Replayed",
                params=("id",),
                request="ReplayRequest",
                errors=("400", "404", "409"),
            ),
        },
        "/v1/templates": {
            "get": _operation("System templates and the account's own", "TemplateList"),
            "post": _operation(
                "Create an own template, or clone a system one ({slug, clone_of})",
                "Template",
                status="201",
                request="TemplateRequest",
                errors=("400",),
            ),
        },
        "/v1/templates/{slug}": {
            "get": _operation(
                "A template (the account's own first, else the system's)",
                "Template",
                params=("slug",),
                errors=("404",),
            ),
            "put": _operation(
                "Create or replace an own template",
                "Template",
                params=("slug",),
                request="TemplatePut",
                errors=("400",),
            ),
            "delete": _operation(
                "Delete an own template (system ones are read-only)",
                "TemplateDeleted",
                params=("slug",),
                errors=("404",),
            ),
        },
        "/v1/templates/{slug}/render": {
            "post": _operation(
                "Render with variables, as a send would (nothing is sent)",
                "Rendered",
                params=("slug",),
                request="RenderRequest",
                errors=("400", "404"),
            ),
        },
        "/v1/suppressions/import": {
            "post": _operation(
                "Import a CSV of address,reason rows",
                "SuppressionImport",
                request="SuppressionImportJson",
                extra_request={"text/csv": {"schema": _S}},
                errors=("400", "413"),
            ),
        },
        "/v1/messages/{id}/cancel": {
            "post": _operation(
                "Cancel the recipients not yet delivered",
                "Cancelled",
                params=("id",),
                errors=("404",),
            ),
        },
        "/v1/messages/{id}/content": {
            "get": _operation(
                "The message as sent: headers and parts",
                "MessageContent",
                params=("id",),
                errors=("404",),
            ),
        },
    }


def merge(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` with the management paths and schemas added (paths it already has, such
    as ``/v1/suppressions``, gain the management methods)."""
    for path, methods in paths().items():
        document["paths"].setdefault(path, {}).update(methods)
    document["paths"].setdefault("/v1/suppressions", {})["post"] = _operation(
        "Suppress an address",
        "SuppressionAdded",
        status="201",
        request="SuppressionRequest",
        errors=("400",),
    )
    document["paths"]["/v1/suppressions/{address}"]["delete"]["responses"]["200"] = {
        "description": "Removed",
        "content": {"application/json": {"schema": _ref("SuppressionRemoved")}},
    }
    document["components"]["schemas"].update(SCHEMAS)
    return document
