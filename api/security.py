"""API keys, checked before a request's body is read; only their SHA-256 digests are kept.

Keys are long random strings, so a plain SHA-256 is enough to keep a leaked configuration
from revealing them (a slow password hash guards guessable secrets, which keys are not).
Make a digest with `printf %s "$KEY" | sha256sum`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Iterable
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from api import docs
from api.errors import ErrorDetail, error_response
from common.settings import Settings

_HEX_DIGEST = re.compile(r"[0-9a-f]{64}")
_ERROR_REF = {"$ref": "#/components/schemas/ErrorResponse"}
SCHEMES = {
    "bearerKey": {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer <key>"},
    "apiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
}
# The results page (api/routes/ui.py): its HTML and assets carry no data, and its scripts send
# the key the person types in. Nothing else may be served under this prefix.
UI_PREFIX = "/ui"


def key_digests(settings: Settings) -> frozenset[bytes]:
    """The digests of every configured key: API_KEY_HASHES as given, API_KEYS hashed now."""
    digests = set()
    for item in settings.api_key_hashes.split(","):
        digest = item.strip().lower()
        if not digest:
            continue
        if not _HEX_DIGEST.fullmatch(digest):
            raise ValueError(
                f"API_KEY_HASHES: {digest[:8]}... is not a SHA-256 hex digest (64 hex digits)"
            )
        digests.add(bytes.fromhex(digest))
    for key in settings.api_keys.get_secret_value().split(","):
        if key.strip():
            digests.add(hashlib.sha256(key.strip().encode()).digest())
    return frozenset(digests)


def _presented_keys(headers: Iterable[tuple[bytes, bytes]]) -> list[bytes]:
    keys = []
    for name, value in headers:
        if name == b"x-api-key":
            keys.append(value.strip())
        elif name == b"authorization":
            scheme, _, token = value.strip().partition(b" ")
            if scheme.lower() == b"bearer":
                keys.append(token.strip())
    return [key for key in keys if key]


def _open_prefix(path: str) -> bool:
    return path.startswith(UI_PREFIX + "/") or docs.is_open(path)


class ApiKeyAuth:
    """401 for a request without a valid key, unless its path is open (health, docs, /ui)."""

    def __init__(self, app: ASGIApp, digests: frozenset[bytes], open_paths: frozenset[str]) -> None:
        self.app = app
        self.digests = digests
        self.open_paths = open_paths

    def _valid(self, key: bytes) -> bool:
        digest = hashlib.sha256(key).digest()
        found = False
        for known in self.digests:  # no early exit: the time taken says nothing about the keys
            found |= hmac.compare_digest(known, digest)
        return found

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path in self.open_paths or _open_prefix(path):
            await self.app(scope, receive, send)
            return
        keys = _presented_keys(scope["headers"])
        if any(self._valid(key) for key in keys):
            await self.app(scope, receive, send)
            return
        if keys:
            code, message = "invalid_api_key", "the API key is not valid; check the key you send"
        else:
            code, message = (
                "missing_api_key",
                "an API key is required: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'",
            )
        headers = {"WWW-Authenticate": "Bearer"}
        await error_response(401, ErrorDetail(code=code, message=message), headers)(
            scope, receive, send
        )


def _documented(app: FastAPI, open_paths: frozenset[str]) -> Callable[[], dict[str, Any]]:
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = build()
        schema.setdefault("components", {})["securitySchemes"] = SCHEMES
        for path, operations in schema.get("paths", {}).items():
            if path in open_paths:
                continue
            for operation in operations.values():
                operation["security"] = [{name: []} for name in SCHEMES]
                operation.setdefault("responses", {})["401"] = {
                    "description": "Missing or wrong API key",
                    "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}},
                    "content": {"application/json": {"schema": _ERROR_REF}},
                }
        app.openapi_schema = schema
        return schema

    return openapi


def install_api_keys(app: FastAPI, settings: Settings) -> None:
    """Require a key on every route but the open ones, when keys are configured."""
    digests = key_digests(settings)
    if not digests:
        return
    spec = [app.openapi_url] if app.openapi_url else []
    open_paths = frozenset({"/health", "/metrics", UI_PREFIX, *spec, *docs.OPEN_PATHS})
    app.add_middleware(ApiKeyAuth, digests=digests, open_paths=open_paths)
    app.openapi = _documented(app, open_paths)  # type: ignore[method-assign]
