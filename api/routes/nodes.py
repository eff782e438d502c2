"""Media nodes as operators see them: alive nodes and their control round trip (admin)."""

from __future__ import annotations

import time
from typing import Any, TypedDict

from litestar import Request, Router, get

from api.auth import scoped
from api.state import services_of
from core.clients import ADMIN_SCOPE
from core.errors import StreamError


class NodeView(TypedDict):
    node_id: str
    queue: str
    capacity: int
    streams: int
    rtt_ms: float | None
    error: str | None


class NodeListView(TypedDict):
    nodes: list[NodeView]


@get("/", **scoped(ADMIN_SCOPE))
async def list_nodes(request: Request[Any, Any, Any]) -> NodeListView:
    """Media nodes with a fresh heartbeat, each pinged on its control queue (API → node → API)."""
    services = services_of(request.app)
    views: list[NodeView] = []
    for node in await services.nodes.alive():
        started = time.perf_counter()
        rtt: float | None = None
        error: str | None = None
        try:
            await services.jobs.ping(node, time.time(), deadline_s=2.0)
            rtt = round((time.perf_counter() - started) * 1000, 2)
        except StreamError as exc:
            error = exc.message
        views.append({"node_id": node.node_id, "queue": node.queue_name,
                      "capacity": node.capacity, "streams": node.streams,
                      "rtt_ms": rtt, "error": error})
    return {"nodes": views}


router = Router(path="/v2/nodes", route_handlers=[list_nodes], tags=["operations"])
