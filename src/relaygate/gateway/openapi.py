"""The OpenAPI 3 document for the public HTTP endpoints (hand-written: it is the contract)."""

from __future__ import annotations

from typing import Any

_ERROR = {"type": "object", "required": ["detail"], "properties": {"detail": {"type": "string"}}}


def _err(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def openapi_document() -> dict[str, Any]:
    """The whole document: the sending and reading routes here, the management API's from
    ``openapi_manage``."""
    from relaygate.gateway.openapi_manage import merge

    return merge(_base_document())


def _base_document() -> dict[str, Any]:
    addr_list = {"type": "array", "items": {"type": "string"}}
    send_request = {
        "type": "object",
        "required": ["from_email", "to"],
        "additionalProperties": False,
        "properties": {
            "from_email": {
                "type": "string",
                "description": "Verified identity: exact address or any address at a verified domain.",
            },
            "to": {**addr_list, "minItems": 1, "maxItems": 50},
            "cc": addr_list,
            "bcc": addr_list,
            "reply_to": {"type": "string"},
            "subject": {"type": "string"},
            "html": {"type": "string"},
            "text": {"type": "string"},
            "template": {"type": "string"},
            "variables": {"type": "object"},
            "headers": {"type": "object", "additionalProperties": {"type": "string"}},
            "tags": {"type": "array", "items": {"type": "string"}},
            "track_opens": {"type": "boolean"},
            "track_clicks": {"type": "boolean"},
            "attachments": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["filename", "content_base64"],
                    "properties": {
                        "filename": {"type": "string"},
                        "content_base64": {"type": "string", "format": "byte"},
                        "content_type": {"type": "string"},
                    },
                },
            },
        },
    }
    security: list[dict[str, list[str]]] = [{"ApiKey": []}]
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "relaygate",
            "version": "1",
            "description": "Self-hosted, SESMetric-compatible email API.",
        },
        "paths": {
            "/v1/send": {
                "post": {
                    "summary": "Queue a transactional email",
                    "security": security,
                    "parameters": [
                        {
                            "name": "Idempotency-Key",
                            "in": "header",
                            "required": False,
                            "schema": {"type": "string"},
                        }
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/SendRequest"}
                            }
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "Queued",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/SendResponse"}
                                }
                            },
                        },
                        "400": _err("Validation failed"),
                        "401": _err("Missing, unknown or revoked X-API-Key"),
                        "402": _err("Account on the free plan"),
                        "403": _err("from_email not verified, or key lacks email:send"),
                        "404": _err("Template not found"),
                        "409": _err("Idempotency-Key reused with a different body"),
                        "413": _err("Request larger than 25 MB"),
                        "429": _err("Daily quota or rate limit exceeded (Retry-After)"),
                        "502": _err("Smarthost refused (synchronous hand-off only)"),
                        "503": _err("Spool unavailable; retry later"),
                    },
                }
            },
            "/v1/messages/{id}": {
                "get": {
                    "summary": "A message with its recipients and events",
                    "security": security,
                    "parameters": [
                        {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
                    ],
                    "responses": {
                        "200": {
                            "description": "The message",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        },
                        "401": _err("Unauthenticated"),
                        "403": _err("Key lacks email:read"),
                        "404": _err("Not found"),
                    },
                }
            },
            "/v1/messages": {
                "get": {
                    "summary": "Messages of the account, newest first, cursor-paged",
                    "security": security,
                    "parameters": [
                        {"name": n, "in": "query", "required": False, "schema": {"type": "string"}}
                        for n in ("tag", "status", "recipient", "since", "cursor")
                    ]
                    + [
                        {
                            "name": "limit",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "integer", "minimum": 1, "maximum": 200},
                        }
                    ],
                    "responses": {
                        "200": {
                            "description": "A page of messages",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        },
                        "400": _err("Invalid filter or cursor"),
                        "401": _err("Unauthenticated"),
                        "403": _err("Key lacks email:read"),
                    },
                }
            },
            "/v1/suppressions": {
                "get": {
                    "summary": "The account's suppression list",
                    "security": security,
                    "parameters": [
                        {
                            "name": "cursor",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "string"},
                        },
                        {
                            "name": "limit",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
                        },
                    ],
                    "responses": {
                        "200": {
                            "description": "A page of suppressed addresses",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        },
                        "400": _err("Invalid limit"),
                        "401": _err("Unauthenticated"),
                        "403": _err("Key lacks email:read"),
                    },
                }
            },
            "/v1/suppressions/{address}": {
                "delete": {
                    "summary": "Remove an address from the suppression list",
                    "security": security,
                    "parameters": [
                        {
                            "name": "address",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        }
                    ],
                    "responses": {
                        "200": {"description": "Removed"},
                        "401": _err("Unauthenticated"),
                        "403": _err("Key lacks email:send"),
                        "404": _err("Not on the list"),
                    },
                }
            },
            "/t/o/{token}": {
                "get": {
                    "summary": "Open-tracking pixel (1x1 GIF)",
                    "parameters": [
                        {
                            "name": "token",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        }
                    ],
                    "responses": {
                        "200": {"description": "image/gif"},
                        "404": {"description": "invalid token"},
                    },
                }
            },
            "/t/c/{token}": {
                "get": {
                    "summary": "Click-tracking redirect",
                    "parameters": [
                        {
                            "name": "token",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        }
                    ],
                    "responses": {
                        "302": {"description": "redirect to the original URL"},
                        "404": {"description": "invalid token"},
                    },
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics",
                    "responses": {"200": {"description": "text/plain"}},
                }
            },
            "/healthz": {
                "get": {"summary": "Liveness", "responses": {"200": {"description": "alive"}}}
            },
            "/readyz": {
                "get": {
                    "summary": "Readiness",
                    "responses": {
                        "200": {"description": "ready"},
                        "503": {"description": "not ready"},
                    },
                }
            },
        },
        "components": {
            "securitySchemes": {"ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}},
            "schemas": {
                "Error": _ERROR,
                "SendRequest": send_request,
                "SendResponse": {
                    "type": "object",
                    "required": ["id", "status"],
                    "properties": {
                        "id": {"type": "string", "pattern": "^msg_[0-9a-f]+$"},
                        "status": {"type": "string", "enum": ["queued"]},
                    },
                },
            },
        },
    }
