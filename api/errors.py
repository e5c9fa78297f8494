"""One error shape for every client error: `{"error": {"code": ..., "message": ...}}`."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, field_validator
from sqlalchemy.exc import InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from common.messages import client_text

log = logging.getLogger(__name__)


class ErrorDetail(BaseModel):
    """An error as the client sees it; its messages follow common.messages' rule."""

    code: str
    message: str
    job_id: str | None = None
    details: list[dict[str, Any]] | None = None

    @field_validator("message")
    @classmethod
    def _clean_message(cls, message: str) -> str:
        return client_text(message)

    @field_validator("details")
    @classmethod
    def _clean_details(cls, details: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
        if details is None:
            return None
        return [
            {key: client_text(v) if isinstance(v, str) else v for key, v in detail.items()}
            for detail in details
        ]


class ErrorResponse(BaseModel):
    error: ErrorDetail


class ApiError(Exception):
    def __init__(
        self,
        status_code: int,
        code: str,
        message: str,
        *,
        job_id: str | None = None,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.detail = ErrorDetail(code=code, message=message, job_id=job_id, details=details)
        self.headers = headers


class ErrorJSONResponse(JSONResponse):
    """ASCII JSON: a message that echoes client input stays encodable (lone surrogates too)."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def error_response(
    status_code: int, detail: ErrorDetail, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = ErrorResponse(error=detail).model_dump(exclude_none=True)
    return ErrorJSONResponse(body, status_code=status_code, headers=headers)


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for a route's error statuses."""
    return {code: {"model": ErrorResponse} for code in codes}


# What to change, for the fields a client most often gets wrong.
_FIELD_HINTS = {
    "image": "send the image file as a multipart field named 'image'",
    "pipeline_id": "send pipeline_id, a positive whole number, as a form field",
}

_HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported",
}


# PostgreSQL cancelled the statement: lock_timeout (55P03) or statement_timeout (57014), the
# API's API_DB_LOCK_TIMEOUT_S and API_DB_STATEMENT_TIMEOUT_S. The transaction was rolled back.
_BUSY_SQLSTATES = {"55P03", "57014"}
BUSY_RETRY_AFTER_S = 1

_BODY_HINT = "send JSON, or multipart/form-data for an upload, as /docs shows"
_BODY_ERRORS = {
    "400": "The body could not be parsed (not JSON, or broken multipart data)",
    "413": "The body is larger than MAX_UPLOAD_BYTES",
}


def document_body_errors(app: FastAPI) -> None:
    """Every operation that takes a body may answer 400 or 413 before its route runs."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = build()
        ref = {"$ref": "#/components/schemas/ErrorResponse"}
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                if "requestBody" not in operation:
                    continue
                answers = operation.setdefault("responses", {})
                for status, description in _BODY_ERRORS.items():
                    answers.setdefault(
                        status,
                        {
                            "description": description,
                            "content": {"application/json": {"schema": ref}},
                        },
                    )
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _describe(err: dict[str, Any]) -> str:
    where = ".".join(str(part) for part in err.get("loc", ()) if part not in ("body", "query"))
    if not where:
        return str(err.get("msg", "invalid"))
    hint = _FIELD_HINTS.get(where)
    return f"{where}: {err.get('msg', 'invalid')}" + (f" ({hint})" if hint else "")


_WHOLE_BODY_NOT_AN_OBJECT = ("model_attributes_type", "dict_type", "model_type")


def _is_json(content_type: str) -> bool:
    kind = content_type.split(";", 1)[0].strip().lower()
    return kind == "application/json" or (
        kind.startswith("application/") and kind.endswith("+json")
    )


def _unreadable_json(request: Request, errors: Sequence[Any]) -> str | None:
    """Why a JSON route could not read the body as JSON at all, or None if it could.

    That is a 400 (the body cannot be parsed), like broken multipart data: FastAPI reports it
    as a validation error at `body.<offset>` (`json_invalid`), or, for a body sent as another
    type, as "not an object" at `body`. A body that is JSON of the wrong shape stays a 422.
    """
    for err in errors:
        if err.get("type") == "json_invalid":
            reason = (err.get("ctx") or {}).get("error") or "malformed"
            where = err.get("loc", ())[-1]
            return (
                f"the body is not valid JSON ({reason} at character {where}); "
                "send a JSON object, as /docs shows"
            )
    content_type = request.headers.get("content-type", "")
    if _is_json(content_type):
        return None
    for err in errors:
        if tuple(err.get("loc", ())) == ("body",) and err.get("type") in _WHOLE_BODY_NOT_AN_OBJECT:
            sent = f"as {content_type.split(';', 1)[0]}" if content_type else "without a type"
            return (
                f"the body must be JSON, with Content-Type: application/json (it was sent {sent})"
            )
    return None


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status_code, exc.detail, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        unreadable = _unreadable_json(request, exc.errors())
        if unreadable is not None:
            return error_response(400, ErrorDetail(code="bad_request", message=unreadable))
        errors = [
            {"field": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg", "")}
            for e in exc.errors()
        ]
        message = "; ".join(_describe(e) for e in exc.errors()) or "invalid request"
        detail = ErrorDetail(code="invalid_request", message=message, details=errors)
        return error_response(422, detail)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        message = str(exc.detail)
        if exc.status_code == 400:  # the body could not be parsed at all
            message = f"malformed request body ({message}); {_BODY_HINT}"
        return error_response(
            exc.status_code,
            ErrorDetail(code=code, message=message),
            dict(exc.headers) if exc.headers else None,
        )

    async def _database_down(_: Request, exc: Exception) -> JSONResponse:
        if getattr(getattr(exc, "orig", None), "sqlstate", None) in _BUSY_SQLSTATES:
            log.warning("database busy: %s", getattr(exc, "orig", exc))
            detail = ErrorDetail(
                code="database_busy",
                message="the database did not answer in time (a row this request needs is "
                f"locked, or the statement ran too long): try again in "
                f"{BUSY_RETRY_AFTER_S} s",
            )
            return error_response(503, detail, {"Retry-After": str(BUSY_RETRY_AFTER_S)})
        log.error("database unavailable: %s", exc)
        detail = ErrorDetail(
            code="database_unavailable", message="the database is unavailable; try again shortly"
        )
        return error_response(503, detail, {"Retry-After": "5"})

    app.add_exception_handler(OperationalError, _database_down)
    app.add_exception_handler(InterfaceError, _database_down)

    @app.exception_handler(Exception)
    async def _bug(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        detail = ErrorDetail(code="internal_error", message="internal error; it has been logged")
        return error_response(500, detail)
