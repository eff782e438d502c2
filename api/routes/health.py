"""Process health for load balancers and orchestrators (no auth)."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, Router, get

from api.state import services_of
from core.clock import iso, utcnow
from core.db import ping


@get("/live", security=[])
async def live() -> dict[str, str]:
    """The API process is up."""
    return {"status": "alive"}


@get("/ready", security=[])
async def ready(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    """The database and Redis answer and at least one media node has a fresh heartbeat."""
    services = services_of(request.app)
    checks: dict[str, dict[str, Any]] = {}
    try:
        await ping(services.engine)
        checks["database"] = {"ok": True}
    except Exception as exc:
        checks["database"] = {"ok": False, "error": type(exc).__name__}
    try:
        await services.redis.ping()
        checks["redis"] = {"ok": True}
    except Exception as exc:
        checks["redis"] = {"ok": False, "error": type(exc).__name__}
    try:
        nodes = await services.nodes.alive()
        checks["media_nodes"] = {"ok": bool(nodes), "alive": len(nodes)}
    except Exception as exc:
        checks["media_nodes"] = {"ok": False, "error": type(exc).__name__}
    ok = all(check["ok"] for check in checks.values())
    body = {"status": "ready" if ok else "not_ready", "checks": checks, "checked_at": iso(utcnow())}
    return Response(body, status_code=200 if ok else 503)


router = Router(path="/v2/health", route_handlers=[live, ready], tags=["health"])
