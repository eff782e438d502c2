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
    503: "No media node or job queue answered in time (MEDIASOUP_UNAVAILABLE, MEDIASOUP_ERROR)",
    504: "The camera did not answer in time (RTSP_TIMEOUT)",
}
# Operations that call a media node or enqueue a job.
_JOBS = ("/start-stream", "/stop-stream", "/validate", "/consume", "/connect", "/ice-candidate",
         "/whep", "/snapshots", "/bookmarks", "/v2/streams", "/v2/nodes", "/consumers/")
# Operations bounded per caller (429 with Retry-After beyond).
_BOUNDED = ("/consume", "/whep", "/snapshots", "/bookmarks")
_FILES = ("/image", "/video", "/thumbnail", "/hls/{segment}")


def _statuses(path: str, method: str, operation: Operation) -> set[int]:
    statuses = {400, 500}
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
    if any(part in path for part in _JOBS) and (method != "get" or path == "/v2/nodes"):
        statuses.add(503)
    if method == "post" and path.endswith(_BOUNDED):
        statuses.add(429)  # VAS_MAX_CONSUMERS_PER_CLIENT, VAS_MAX_JOBS_PER_CLIENT
    if path.endswith(_FILES):
        statuses |= {409, 416}
    if "/hls/" in path:
        statuses.add(409)
    return statuses


def _omnisight_statuses(path: str, method: str, operation: Operation) -> set[int]:
    statuses = {400, 500}
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
        statuses |= {502, 503, 504}  # the camera refused, nothing answered, it timed out
    if path.endswith("/snapshot") or "/live/" in path:
        statuses.add(503)  # the stream's media node did not answer in time
    return statuses


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
            responses[str(status)] = OpenAPIResponse(
                description=description,
                content={"application/json": OpenAPIMediaType(schema=OMNISIGHT_ERROR)},
            )


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
                responses[str(status)] = OpenAPIResponse(
                    description=REASONS[status],
                    content={"application/json": OpenAPIMediaType(schema=VAS_ERROR)},
                )
            if path.endswith(_FILES):
                responses.setdefault("206", OpenAPIResponse(description="Partial content"))
            if (path, method) == ("/v2/streams", "post") and "202" in responses:
                # 202 for a new stream; 200 with the camera's stream when it already has one.
                accepted = responses["202"]
                assert isinstance(accepted, OpenAPIResponse)
                responses["200"] = OpenAPIResponse(
                    description="The camera's active stream", content=accepted.content)
