"""The error answers of OmniSight routes in the OpenAPI document: the statuses a route may
answer besides its success, each with the family's `{"error": {code, message, details}}`
body (so that generated clients and schema checkers know them)."""

from __future__ import annotations

from typing import Any, TypedDict

from litestar.openapi.datastructures import ResponseSpec


class ErrorObject(TypedDict):
    code: str
    message: str
    details: dict[str, Any]


class ErrorBody(TypedDict):
    error: ErrorObject


REASONS = {
    400: "Invalid input (VALIDATION_ERROR)", 401: "Missing, invalid or expired token",
    403: "Token lacks the scope", 404: "Not found (RESOURCE_NOT_FOUND)",
    409: "The resource's state does not allow it (CONFLICT)", 413: "Body too large",
    416: "Range not satisfiable",
    429: "A per-caller bound is reached (RATE_LIMITED; see Retry-After)", 500: "Internal error",
    502: "The camera failed (SERVICE_UNAVAILABLE)",
    503: "No media node or job answered in time (SERVICE_UNAVAILABLE)",
    504: "The camera did not answer in time (SERVICE_UNAVAILABLE)",
}


def error_responses(*extra: int) -> dict[int, ResponseSpec]:
    """400, 401, 403, 404, 500 and `extra`, each with the OmniSight error body."""
    return {status: ResponseSpec(data_container=ErrorBody, description=REASONS[status],
                                 generate_examples=False)
            for status in sorted({400, 401, 403, 404, 500, *extra})}
