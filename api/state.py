"""The services one API process holds, built at startup and reached from routes and guards."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Litestar
from piccolo.engine.base import Engine
from redis.asyncio import Redis

from core.captures import BookmarkService, SnapshotService
from core.clients import ClientService
from core.consumers import ConsumerService
from core.detection_settings import DetectionSettingsService
from core.devices import DeviceService
from core.events import EventService
from core.nodes import NodeRegistry
from core.quotas import CallerQuota, caller_of
from core.recording_sessions import RecordingSessionService
from core.recordings import RecordingIndex
from core.settings import Settings
from core.streams import StreamService
from core.system_settings import SystemSettingsService
from core.system_status import SystemStatusService
from core.users import UserService
from jobs.client import JobClient
from jobs.control import StreamControl


@dataclass
class Services:
    """Everything a request handler may need; one instance per API process."""

    settings: Settings
    engine: Engine[Any]
    redis: Redis
    clients: ClientService
    devices: DeviceService
    streams: StreamService
    consumers: ConsumerService
    nodes: NodeRegistry
    jobs: JobClient
    control: StreamControl
    recordings: RecordingIndex
    snapshots: SnapshotService
    bookmarks: BookmarkService
    users: UserService
    system_settings: SystemSettingsService
    detection_settings: DetectionSettingsService
    events: EventService
    system_status: SystemStatusService
    recording_sessions: RecordingSessionService
    consumer_quota: CallerQuota  # VAS_MAX_CONSUMERS_PER_CLIENT
    job_quota: CallerQuota  # VAS_MAX_JOBS_PER_CLIENT


def caller(request: Any) -> str:
    """The authenticated caller of a request (an API client or a user), for per-caller bounds."""
    principal = request.state.principal
    return caller_of(principal.kind, principal.client_id)


def services_of(app: Litestar) -> Services:
    services: Services = app.state.services
    return services
