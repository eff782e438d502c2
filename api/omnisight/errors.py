"""The one translation point from errors to HTTP for OmniSight routes:
`{"error": {"code", "message", "details"}}` (OmniSight document, "Error Responses").

Attached as Router-level exception handlers of the OmniSight router, so VAS routes keep their
`{"detail": …}` shape. Domain code raises the same `core.errors` tree for both families.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.types import ExceptionHandlersMap

from core.credentials import mask_text
from core.db import database_unreachable
from core.errors import (
    ConfigError,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    RateLimited,
    RtspConnectionFailed,
    RtspTimeout,
    SsrcCaptureFailed,
    StreamError,
    Unauthorized,
    VasError,
)

logger = logging.getLogger(__name__)

VALIDATION_ERROR = "VALIDATION_ERROR"
INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR"
# The nearest class of an error's hierarchy decides (MRO order). StreamError's subclasses
# that are not listed (MediaUnavailable, MediaInternalError) are SERVICE_UNAVAILABLE.
CODES: dict[type[VasError], tuple[int, str]] = {
    InvalidInput: (400, VALIDATION_ERROR),
    Unauthorized: (401, "UNAUTHORIZED"),
    Forbidden: (403, "FORBIDDEN"),
    NotFound: (404, "RESOURCE_NOT_FOUND"),
    Conflict: (409, "CONFLICT"),
    RateLimited: (429, "RATE_LIMITED"),
    RtspConnectionFailed: (502, "SERVICE_UNAVAILABLE"),
    SsrcCaptureFailed: (502, "SERVICE_UNAVAILABLE"),
    RtspTimeout: (504, "SERVICE_UNAVAILABLE"),
    StreamError: (503, "SERVICE_UNAVAILABLE"),
    ConfigError: (500, INTERNAL_SERVER_ERROR),
}
# Litestar's own HTTP errors on OmniSight routes, by status.
HTTP_CODES: dict[int, str] = {
    400: VALIDATION_ERROR, 401: "UNAUTHORIZED", 403: "FORBIDDEN", 404: "RESOURCE_NOT_FOUND",
    405: "METHOD_NOT_ALLOWED", 409: "CONFLICT", 413: "PAYLOAD_TOO_LARGE", 429: "RATE_LIMITED",
    503: "SERVICE_UNAVAILABLE",
}
_AT = re.compile(r"\s*-\s*at `\$(?P<path>[^`]*)`$")
_UNKNOWN = re.compile(r"(?:unknown|missing required) field `(?P<name>[^`]+)`")


def error_response(
    status: int, code: str, message: str, details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response[Any]:
    """An OmniSight error body."""
    body = {"error": {"code": code, "message": message, "details": details or {}}}
    return Response(body, status_code=status, headers=headers, media_type=MediaType.JSON)


def code_for(exc: VasError) -> tuple[int, str]:
    for cls in type(exc).__mro__:
        if cls in CODES:
            return CODES[cls]
    return 500, INTERNAL_SERVER_ERROR


def vas_error(_: Request[Any, Any, Any], exc: VasError) -> Response[Any]:
    status, code = code_for(exc)
    headers: dict[str, str] = {}
    details = dict(exc.details)
    if isinstance(exc, Unauthorized):
        headers["WWW-Authenticate"] = "Bearer"
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.retry_after)
        details.setdefault("retryAfter", exc.retry_after)
    if isinstance(exc, StreamError):
        details.setdefault("errorCode", exc.error_code)
        if exc.detail:
            details.setdefault("detail", mask_text(exc.detail))
    if status >= 500:
        logger.error("%s: %s", type(exc).__name__, exc.message)
    return error_response(status, code, mask_text(exc.message), details, headers)


def _fields(extra: Any) -> list[dict[str, str]]:
    """Litestar's validation details as [{field, message, source}], field as a dotted path."""
    fields: list[dict[str, str]] = []
    if not isinstance(extra, list):
        return fields
    for item in extra:
        if not isinstance(item, dict):
            continue
        message = str(item.get("message", "invalid value"))
        # Litestar names the body's path ("storage.maxUsage"), or "data" for the body itself.
        key = str(item.get("key") or "")
        key = "" if key == "data" else key
        found = _AT.search(message)
        if found:  # msgspec's own form: "Expected `int`, got `str` - at `$.storage.maxUsage`"
            message = message[: found.start()]
            key = found["path"].lstrip(".") or key
        unknown = _UNKNOWN.search(message)
        if unknown:  # "Object contains unknown field `role`" (or missing required): name it
            key = f"{key}.{unknown['name']}" if key else unknown["name"]
        entry = {"field": key, "message": message}
        source = item.get("source")
        if source:
            entry["source"] = str(getattr(source, "value", source))
        fields.append(entry)
    return fields


def http_error(_: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    if isinstance(exc, ValidationException):
        fields = _fields(exc.extra)
        if fields:
            first = fields[0]
            where = f"{first['field']}: " if first["field"] else ""
            message = f"Invalid request: {where}{first['message']}"
            details: dict[str, Any] = {"field": first["field"], "fields": fields}
        else:
            message, details = f"Invalid request: {exc.detail}", {}
        return error_response(400, VALIDATION_ERROR, mask_text(message), details)
    status = exc.status_code
    code = HTTP_CODES.get(status, VALIDATION_ERROR if status < 500 else INTERNAL_SERVER_ERROR)
    return error_response(status, code, str(exc.detail), None, dict(exc.headers or {}))


def unexpected_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    if database_unreachable(exc):  # the database is away: retry later, not a server bug
        logger.warning("database not reachable (%s) on %s", type(exc).__name__,
                       request.url.path)
        return error_response(503, "SERVICE_UNAVAILABLE", "The database is not reachable",
                              None, {"Retry-After": "5"})
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, INTERNAL_SERVER_ERROR, "Internal server error")


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    VasError: vas_error,
    HTTPException: http_error,
    Exception: unexpected_error,
}
