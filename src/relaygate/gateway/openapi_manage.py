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


SCHEMAS: dict[str, dict[str, Any]] = {
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
