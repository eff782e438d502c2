"""What the system is doing, from reality: `GET /system/status` of the OmniSight API.

Sources: this API process (its start), the workers' heartbeats in Redis (`core.workers`),
the media nodes' heartbeats (`vas_media_node`), the disk that holds the recordings, the
segment index, the devices and their streams, and the detection events of the last day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib.metadata import PackageNotFoundError, version

from core.clock import utcnow
from core.devices import CameraStatus, DeviceService
from core.events import count_since
from core.nodes import NodeRegistry
from core.recordings import RecordingIndex, RecordingUsage
from core.retention import DiskState, disk_state
from core.stream_states import StreamState
from core.streams import StreamService
from core.workers import WorkerRegistry

API_SERVICE = "api-gateway"


def product_version() -> str:
    try:
        return version("vas")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "0.0.0"


@dataclass(frozen=True, slots=True)
class ServiceState:
    """One process of the system: healthy while its heartbeat is fresh."""

    name: str
    healthy: bool
    uptime_s: int


@dataclass(frozen=True, slots=True)
class SystemStatus:
    """Everything `GET /system/status` shows."""

    healthy: bool
    version: str
    uptime_s: int
    services: list[ServiceState]
    disk: DiskState
    recordings: RecordingUsage
    cameras: dict[CameraStatus, int]
    recording_streams: int
    events: dict[str, int]


def _uptime(started: datetime, now: datetime) -> int:
    return max(0, int((now - started).total_seconds()))


class SystemStatusService:
    """Gathers the status of one installation, as seen by one API process."""

    def __init__(self, started_at: datetime, devices: DeviceService, streams: StreamService,
                 nodes: NodeRegistry, workers: WorkerRegistry, index: RecordingIndex) -> None:
        self._started_at = started_at
        self._devices = devices
        self._streams = streams
        self._nodes = nodes
        self._workers = workers
        self._index = index

    async def services(self) -> list[ServiceState]:
        """This API process, every worker and every registered media node; one that stopped
        answering is listed unhealthy (uptime 0) until it is forgotten."""
        now = utcnow()
        services = [ServiceState(API_SERVICE, True, _uptime(self._started_at, now))]
        for worker in await self._workers.all():
            healthy = worker.healthy(now)
            services.append(ServiceState(f"worker:{worker.worker_id}", healthy,
                                         _uptime(worker.started_at, now) if healthy else 0))
        for node in await self._nodes.registered():
            services.append(ServiceState(f"media-node:{node.node_id}", node.alive,
                                         _uptime(node.started_at, now) if node.alive else 0))
        return services

    async def get(self) -> SystemStatus:
        now = utcnow()
        services = await self.services()
        kinds = {s.name.split(":", 1)[0] for s in services if s.healthy}
        # Healthy: every listed process answers, and at least one worker and one media node do.
        healthy = all(s.healthy for s in services) and {"worker", "media-node"} <= kinds
        live = await self._streams.page(StreamState.LIVE, None, 1, 0)
        return SystemStatus(
            healthy=healthy, version=product_version(), uptime_s=_uptime(self._started_at, now),
            services=services, disk=disk_state(self._index.root),
            recordings=await self._index.usage(), cameras=await self._devices.status_counts(),
            recording_streams=live.total,  # every LIVE stream records
            events={kind: n for kind, n in
                    (await count_since(now - timedelta(hours=24))).items() if n},
        )
