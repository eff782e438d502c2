"""Guide §6.2: both error shapes from the one translation point; OpenAPI with security."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from litestar import Litestar, get

from core.errors import (
    Conflict,
    MediaUnavailable,
    RtspConnectionFailed,
    RtspTimeout,
    SsrcCaptureFailed,
    StreamStartFailed,
    stream_error,
)
from tests.omnisight.test_openapi_errors import _schema


@pytest.mark.parametrize("error, status", [
    (RtspConnectionFailed("Failed to connect", "Connection refused"), 502),
    (RtspTimeout("Camera not responding", "no answer in 5 s"), 504),
    (SsrcCaptureFailed("Failed to capture SSRC from RTSP source", "no video"), 502),
    (MediaUnavailable("No media node answered", None), 503),
    (StreamStartFailed("Stream start failed", "rtsp://u:pw@192.0.2.1/x refused"), 500),
])
async def test_stream_errors_have_the_detailed_shape(app: Litestar, client: httpx.AsyncClient,
                                                     error, status):
    @get("/v2/test-raise", include_in_schema=False)
    async def raise_it() -> None:
        raise error

    app.register(raise_it)
    response = await client.get("/v2/test-raise")
    assert response.status_code == status
    assert response.json() == {"detail": {
        "error_code": error.error_code,
        "message": error.message,
        "detail": error.detail.replace("pw", "******") if error.detail else None,
    }}
    assert "pw@" not in response.text


async def test_plain_errors_have_the_standard_shape(app: Litestar, client: httpx.AsyncClient):
    @get("/v2/test-conflict", include_in_schema=False)
    async def conflict() -> None:
        raise Conflict("Stream is CLOSED; it cannot become LIVE")

    @get("/v2/test-crash", include_in_schema=False)
    async def crash() -> None:
        raise RuntimeError("boom: secret internals")

    app.register(conflict)
    app.register(crash)
    response = await client.get("/v2/test-conflict")
    assert (response.status_code, response.json()) == (
        409, {"detail": "Stream is CLOSED; it cannot become LIVE"})
    crashed = await client.get("/v2/test-crash")
    assert (crashed.status_code, crashed.json()) == (500, {"detail": "Internal server error"})
    assert (await client.get("/no/such/route")).json() == {"detail": "Not Found"}
    wrong_method = await client.patch("/v2/streams")
    assert wrong_method.status_code == 405 and set(wrong_method.json()) == {"detail"}


async def test_openapi_lists_every_route_with_security_and_scopes(client: httpx.AsyncClient):
    response = await client.get("/schema/openapi.json")
    assert response.status_code == 200
    spec = response.json()
    assert spec["components"]["securitySchemes"]["BearerToken"]["scheme"] == "bearer"
    paths = spec["paths"]
    for path, method, scope in (
        ("/v2/streams", "get", "streams:read"),
        ("/v2/streams/{stream_id}", "delete", "streams:write"),
        ("/v2/auth/clients", "post", "admin"),
    ):
        assert paths[path][method]["security"] == [{"BearerToken": [scope]}], (path, method)
    assert "/api/v1/devices" in paths
    assert paths["/v2/auth/token"]["post"].get("security") in ([], None)
    ui = await client.get("/schema/swagger")
    assert ui.status_code == 200 and "swagger" in ui.text.lower()


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # the same document on both
async def test_every_operation_documents_the_database_away_answer(client: httpx.AsyncClient):
    """Every operation but liveness reads the database, so each can answer 503 with
    Retry-After in its family's shape while the database is away (api.errors.database_away,
    api.omnisight.errors.unexpected_error); the document lists it on each one."""
    spec = (await client.get("/schema/openapi.json")).json()
    walked = set()
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method not in ("get", "put", "post", "delete", "patch"):
                continue
            responses = operation["responses"]
            if path.startswith("/v2/health/"):
                continue  # below: liveness reads nothing, readiness has its own body
            assert "503" in responses, (path, method)
            omnisight = path.startswith("/api/v1/") and not path.startswith("/api/v1/devices")
            schema = _schema(spec, responses["503"])
            assert schema["required"] == ["error" if omnisight else "detail"], (path, method)
            assert responses["503"]["headers"]["Retry-After"]["schema"]["type"] == "integer"
            walked.add((path, method, omnisight))
    assert len({w for w in walked if w[2]}) >= 30 and len({w for w in walked if not w[2]}) >= 40
    health = spec["paths"]["/v2/health/live"]["get"]["responses"]
    assert "503" not in health
    ready = spec["paths"]["/v2/health/ready"]["get"]["responses"]
    assert ready["503"]["content"] == ready["200"]["content"]


async def test_health_endpoints_need_no_auth(client: httpx.AsyncClient):
    live = await client.get("/v2/health/live")
    assert live.status_code == 200 and live.json() == {"status": "alive"}
    ready = await client.get("/v2/health/ready")
    body = ready.json()
    # Database and Redis are up; no media node runs in this test, so not ready.
    assert body["checks"]["database"] == {"ok": True}
    assert body["checks"]["redis"] == {"ok": True}
    assert body["checks"]["media_nodes"] == {"ok": False, "alive": 0}
    assert ready.status_code == 503 and body["status"] == "not_ready"


GUIDE = Path(__file__).resolve().parents[3] / "shared" / "spec" / "vas-ms-v2-integration-guide.md"


def _guide_error_table() -> dict[str, int]:
    """§6.3 "Error Codes Reference", read from the guide itself: code → HTTP status."""
    text = GUIDE.read_text()
    section = text.split("### 6.3 Error Codes Reference", 1)[1].split("###", 1)[0]
    rows = re.findall(r"^\| `([A-Z_]+)` \| (\d{3}) \|", section, flags=re.M)
    return {code: int(status) for code, status in rows}


def test_the_guides_error_table_is_read():
    table = _guide_error_table()
    assert len(table) == 8 and table["RTSP_TIMEOUT"] == 504  # guard: the parse saw the table


@pytest.mark.parametrize("code", sorted(_guide_error_table()))
async def test_every_code_of_the_guides_table_answers_its_status(app: Litestar,
                                                                client: httpx.AsyncClient, code):
    status = _guide_error_table()[code]
    error = stream_error(code, f"{code} happened", "technical detail")
    assert error.error_code == code  # a class of its own, not the generic fallback

    @get(f"/v2/test-guide-{code.lower()}", include_in_schema=False)
    async def raise_it() -> None:
        raise error

    app.register(raise_it)
    response = await client.get(f"/v2/test-guide-{code.lower()}")
    assert response.status_code == status
    assert response.json() == {"detail": {"error_code": code, "message": f"{code} happened",
                                          "detail": "technical detail"}}
