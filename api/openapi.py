"""The error answers of every operation, written into the OpenAPI document.

Litestar documents a route's success status and its own validation error; the statuses the
error translation points answer (`api.errors` for the VAS family, `api.omnisight.errors` for
the OmniSight family) and their bodies are added here once, by rule, so that generated
clients and schema checkers know every status an operation can really answer and the exact
shape of its body.
"""

from __future__ import annotations

from typing import Any

from litestar import Litestar
from litestar._openapi.plugin import OpenAPIPlugin
from litestar.openapi.spec import (
    OpenAPI,
    OpenAPIHeader,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Schema,
)

_TEXT = Schema(type=OpenAPIType.STRING)
# Guide §6.2: `{"detail": "…"}`, or `{"detail": {error_code, message, detail}}` for streams.
VAS_ERROR = Schema(
    type=OpenAPIType.OBJECT,
    required=["detail"],
    properties={"detail": Schema(one_of=[
        _TEXT,
        Schema(type=OpenAPIType.OBJECT, required=["error_code", "message", "detail"],
               properties={"error_code": _TEXT, "message": _TEXT,
                           "detail": Schema(one_of=[_TEXT, Schema(type=OpenAPIType.NULL)])}),
    ])},
)

# OmniSight, "Error Responses": `{"error": {code, message, details}}`.
OMNISIGHT_ERROR = Schema(
    type=OpenAPIType.OBJECT,
    required=["error"],
    properties={"error": Schema(
        type=OpenAPIType.OBJECT, required=["code", "message", "details"],
        properties={"code": _TEXT, "message": _TEXT, "details": Schema(type=OpenAPIType.OBJECT)},
    )},
)

REASONS = {
    400: "Invalid input", 401: "Missing, invalid or expired token", 403: "Token lacks the scope",
    404: "Not found", 409: "The resource's state does not allow it", 413: "Body too large",
    416: "Range not satisfiable",
    429: "Too many attempts, or a per-caller bound reached (see Retry-After)",
    500: "Internal error", 502: "The camera failed (RTSP_CONNECTION_FAILED, SSRC_CAPTURE_FAILED)",
    503: "The database or the job queue is not reachable (Retry-After), or no media node "
         "answered in time (MEDIASOUP_UNAVAILABLE, MEDIASOUP_ERROR)",
    504: "The camera did not answer in time (RTSP_TIMEOUT)",
}
# The only operations that never read the database; every other one answers 503 in its
# family's shape while the database is away (api.errors.database_away), as when a media node
# or the job queue does not answer. Readiness answers 503 with its own body.
_NO_DATABASE = ("/v2/health/live", "/v2/health/ready")
# Operations bounded per caller (429 with Retry-After beyond).
_BOUNDED = ("/consume", "/whep", "/snapshots", "/bookmarks")
_FILES = ("/image", "/video", "/thumbnail", "/hls/{segment}")


def _statuses(path: str, method: str, operation: Operation) -> set[int]:
    statuses = {400, 500} if path in _NO_DATABASE else {400, 500, 503}
    secured = operation.security or []
    if any(requirement for requirement in secured):
        statuses |= {401, 403}
    if "{" in path:
        statuses.add(404)
    if method != "get":
        statuses |= {409, 413}
    if path.startswith("/v2/auth/token"):
        statuses |= {401, 429}
    if path.endswith("/start-stream") or (path, method) == ("/v2/streams", "post"):
        statuses |= {502, 504}  # they wait for the camera to open
    if method == "post" and path.endswith(_BOUNDED):
        statuses.add(429)  # VAS_MAX_CONSUMERS_PER_CLIENT, VAS_MAX_JOBS_PER_CLIENT
    if path.endswith(_FILES):
        statuses |= {409, 416}
    if "/hls/" in path:
        statuses.add(409)
    return statuses


def _omnisight_statuses(path: str, method: str, operation: Operation) -> set[int]:
    statuses = {400, 500, 503}  # 503: the database is away, or the media node did not answer
    if any(requirement for requirement in operation.security or []):
        statuses |= {401, 403}
    if "{" in path:
        statuses.add(404)
    if method != "get":
        statuses |= {409, 413}
    if path.startswith("/api/v1/auth/"):
        statuses.add(401)  # bad credentials or refresh token; a bad optional token on register
        if path.endswith("/register"):
            statuses.add(403)  # an admin role without users:admin; registration closed
        if path.endswith("/login"):
            statuses.add(429)
    if method in ("post", "put", "patch", "delete"):
        statuses.add(404)  # a body may name a resource (a camera) that does not exist
    if path.endswith(("/stream/start", "/recordings/start")):
        statuses |= {502, 504}  # the camera refused, it timed out
    if path.startswith("/api/v1/media/segments/"):
        statuses.add(416)  # a bad Range (503 also for `?format=mp4` of a file that does not remux)
    return statuses


_RETRY_AFTER = OpenAPIHeader(
    schema=Schema(type=OpenAPIType.INTEGER),
    description="Seconds to wait before trying again (the database or the job queue is away)")


def _error(status: int, description: str, schema: Schema) -> OpenAPIResponse:
    return OpenAPIResponse(
        description=description,
        content={"application/json": OpenAPIMediaType(schema=schema)},
        headers={"Retry-After": _RETRY_AFTER} if status == 503 else None,
    )


def _document_omnisight(path: str, item: Any) -> None:
    for method in ("get", "put", "post", "delete", "patch"):
        operation: Operation | None = getattr(item, method)
        if operation is None:
            continue
        responses = operation.responses = dict(operation.responses or {})
        statuses = _omnisight_statuses(path, method, operation)
        # Statuses a route documented itself keep their description, with the one schema.
        statuses |= {int(code) for code in responses if code.isdigit() and int(code) >= 400}
        for status in sorted(statuses):
            known = responses.get(str(status))
            description = (known.description if isinstance(known, OpenAPIResponse)
                           else REASONS.get(status, "Error"))
            responses[str(status)] = _error(status, description, OMNISIGHT_ERROR)


class _DocumentedOpenAPIPlugin(OpenAPIPlugin):
    """Litestar's OpenAPI plugin, adding the error answers when it builds the document.

    The document is built on its first request (/schema, a schemathesis run), not at
    start-up: building it costs as much as the rest of `create_app`, for every API process.
    """

    __slots__ = ()

    def provide_openapi(self) -> OpenAPI:
        fresh = self._openapi is None
        openapi = super().provide_openapi()
        if fresh:
            _document(openapi)
        return openapi


def document_errors(app: Litestar) -> None:
    """Add the error answers of both families to every operation of `app`'s document,
    when the document is built."""
    app.plugins.get(OpenAPIPlugin).__class__ = _DocumentedOpenAPIPlugin


def _document(openapi: OpenAPI) -> None:
    for path, item in (openapi.paths or {}).items():
        if path.startswith("/api/v1/") and not path.startswith("/api/v1/devices"):
            _document_omnisight(path, item)
            continue
        if not (path.startswith("/v2/") or path.startswith("/api/v1/devices")):
            continue
        for method in ("get", "put", "post", "delete", "patch"):
            operation: Operation | None = getattr(item, method)
            if operation is None:
                continue
            responses = operation.responses = dict(operation.responses or {})
            for status in sorted(_statuses(path, method, operation)):
                responses[str(status)] = _error(status, REASONS[status], VAS_ERROR)
            if path.endswith(_FILES):
                responses.setdefault("206", OpenAPIResponse(description="Partial content"))
            if path == "/v2/health/ready" and isinstance(ready := responses.get("200"),
                                                        OpenAPIResponse):
                responses["503"] = OpenAPIResponse(
                    description="Not ready: the database, Redis or every media node is away "
                                "(the same body, `status: not_ready`)", content=ready.content)
            if (path, method) == ("/v2/streams", "post") and "202" in responses:
                # 202 for a new stream; 200 with the camera's stream when it already has one.
                accepted = responses["202"]
                assert isinstance(accepted, OpenAPIResponse)
                responses["200"] = OpenAPIResponse(
                    description="The camera's active stream", content=accepted.content)
