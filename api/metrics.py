"""`GET /metrics`: Prometheus exposition of the cluster as the database and Redis see it, and
of this API process's own requests.

Cluster gauges are read at scrape time (one query each), so any API process answers for the
whole cluster. Labels stay bounded: states, queue names, route templates, status codes —
never stream or consumer ids. `VAS_METRICS_TOKEN` puts the endpoint behind a bearer token.
"""

from __future__ import annotations

import hmac
import time
from typing import Any

from litestar import Request, Response, get
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from redis.asyncio import Redis

from api.state import Services, services_of
from core.errors import Unauthorized
from jobs.broker import SHARED_QUEUES

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                   30.0)


class ApiMetrics:
    """The metrics of one API process, in a registry of its own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("vas_api_requests_total", "HTTP requests answered by this API "
                                "process", ["method", "route", "status"], registry=r)
        self.latency = Histogram("vas_api_request_duration_seconds",
                                 "Time to answer an HTTP request", ["method", "route"],
                                 buckets=LATENCY_BUCKETS, registry=r)
        self.streams = Gauge("vas_streams", "Streams by state", ["state"], registry=r)
        self.consumers = Gauge("vas_consumers", "WebRTC consumers by state", ["state"], registry=r)
        self.nodes = Gauge("vas_media_nodes", "Media nodes with a fresh heartbeat", registry=r)
        self.node_capacity = Gauge("vas_media_node_capacity_streams", "Streams the live media "
                                   "nodes can take in all", registry=r)
        self.node_load = Gauge("vas_media_node_streams", "Streams the live media nodes run",
                               registry=r)
        self.queue = Gauge("vas_queue_messages", "Messages waiting in a Dramatiq queue (delayed "
                           "retries included)", ["queue"], registry=r)
        self.recordings = Gauge("vas_recordings_bytes", "Bytes of recorded HLS segments",
                                registry=r)

    async def refresh(self, services: Services) -> None:
        """Read the cluster gauges (a scrape)."""
        for state, count in (await services.streams.count_by_state()).items():
            self.streams.labels(state=state.value).set(count)
        for kind, count in (await services.consumers.count_by_state()).items():
            self.consumers.labels(state=kind.value).set(count)
        nodes = await services.nodes.alive()
        self.nodes.set(len(nodes))
        self.node_capacity.set(sum(n.capacity for n in nodes))
        self.node_load.set(sum(n.streams for n in nodes))
        queues = [*SHARED_QUEUES, *(n.queue_name for n in nodes)]
        namespace = f"{services.settings.redis.namespace}:dramatiq"
        for queue, depth in (await _queue_depths(services.redis, namespace, queues)).items():
            self.queue.labels(queue=_queue_label(queue)).set(depth)
        self.recordings.set(await services.recordings.total_bytes())


def _queue_label(queue: str) -> str:
    """Node control queues share one label: one series per node would grow without bound."""
    return "media-node" if queue.startswith("media-node.") else queue


async def _queue_depths(redis: Redis, namespace: str, queues: list[str]) -> dict[str, int]:
    # The nodes' shared series is set even with no live node: a Gauge keeps a label's last
    # value, and the last node's queue would stay in it after its lease lapsed.
    depths: dict[str, int] = {"media-node": 0}
    async with redis.pipeline(transaction=False) as pipe:
        for queue in queues:
            pipe.llen(f"{namespace}:{queue}")
            pipe.llen(f"{namespace}:{queue}.DQ")
        lengths = await pipe.execute()
    for i, queue in enumerate(queues):
        label = _queue_label(queue)
        depths[label] = depths.get(label, 0) + int(lengths[2 * i]) + int(lengths[2 * i + 1])
    return depths


class MetricsMiddleware:
    """Counts every HTTP request by method, route template and status, and times it."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = str(scope.get("path_template") or "unmatched")
            method = str(scope.get("method", "GET"))
            self.metrics.requests.labels(method=method, route=route, status=str(status)).inc()
            self.metrics.latency.labels(method=method, route=route).observe(
                time.perf_counter() - started)


def _check_token(request: Request[Any, Any, Any], token: str | None) -> None:
    if token is None:
        return
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip(), token):
        raise Unauthorized("Not authenticated: /metrics needs 'Authorization: Bearer "
                           "<VAS_METRICS_TOKEN>'")


@get("/metrics", include_in_schema=False, security=[])
async def metrics_endpoint(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Prometheus text exposition (no auth unless VAS_METRICS_TOKEN is set)."""
    services = services_of(request.app)
    _check_token(request, services.settings.server.metrics_token)
    metrics: ApiMetrics = request.app.state.metrics
    await metrics.refresh(services)
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
