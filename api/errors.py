"""The one translation point from errors to HTTP for VAS routes: `{"detail": …}` bodies.

Stream operations carry the guide's detailed shape
`{"detail": {"error_code", "message", "detail"}}` (§6.2); everything else the standard one.
"""

from __future__ import annotations

import logging
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
    MediaInternalError,
    MediaUnavailable,
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

STATUS: dict[type[VasError], int] = {
    InvalidInput: 400,
    Unauthorized: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    RateLimited: 429,
    StreamError: 500,
    ConfigError: 500,
    RtspConnectionFailed: 502,
    SsrcCaptureFailed: 502,
    MediaUnavailable: 503,
    MediaInternalError: 503,
    RtspTimeout: 504,
}


def status_for(exc: VasError) -> int:
    """The status of the nearest class in `exc`'s hierarchy that has one."""
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def _json(status: int, detail: Any, headers: dict[str, str] | None = None) -> Response[Any]:
    return Response({"detail": detail}, status_code=status, headers=headers,
                    media_type=MediaType.JSON)


def vas_error(_: Request[Any, Any, Any], exc: VasError) -> Response[Any]:
    status = status_for(exc)
    headers: dict[str, str] = {}
    if isinstance(exc, Unauthorized):
        headers["WWW-Authenticate"] = "Bearer"
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.retry_after)
    if isinstance(exc, StreamError):
        detail: Any = {
            "error_code": exc.error_code,
            "message": exc.message,
            "detail": mask_text(exc.detail) if exc.detail else exc.detail,
        }
        return _json(status, detail, headers)
    if status >= 500:
        logger.error("%s: %s", type(exc).__name__, exc.message)
    return _json(status, exc.message, headers)


def _describe(extra: Any) -> str:
    """Litestar's validation details as one readable line: `limit: Expected int >= 1`."""
    if not isinstance(extra, list):
        return ""
    parts = []
    for item in extra:
        if isinstance(item, dict):
            key = item.get("key")
            message = str(item.get("message", "invalid value"))
            parts.append(f"{key}: {message}" if key else message)
    return "; ".join(parts)


def http_error(_: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    if isinstance(exc, ValidationException):
        described = _describe(exc.extra)
        detail = "Invalid request" + (f": {described}" if described else f": {exc.detail}")
        return _json(400, mask_text(detail))
    headers = dict(exc.headers or {})
    return _json(exc.status_code, exc.detail, headers)


DATABASE_AWAY = "The database is not reachable"
RETRY_AFTER_S = "5"


def database_away(path: str, exc: Exception) -> Response[Any]:
    """503 while the database is away: the guide's detailed shape on stream operations
    (as when no media node answers), the standard one elsewhere."""
    logger.warning("database not reachable (%s) on %s", type(exc).__name__, path)
    headers = {"Retry-After": RETRY_AFTER_S}
    if "/streams" in path or path.endswith("-stream"):
        return _json(503, {"error_code": MediaUnavailable.error_code, "message": DATABASE_AWAY,
                           "detail": type(exc).__name__}, headers)
    return _json(503, DATABASE_AWAY, headers)


def unexpected_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    if database_unreachable(exc):
        return database_away(request.url.path, exc)
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return _json(500, "Internal server error")


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    VasError: vas_error,
    HTTPException: http_error,
    Exception: unexpected_error,
}
