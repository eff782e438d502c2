"""The Litestar application factory."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

from litestar import Litestar
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from redis.asyncio import Redis

from api import omnisight
from api.auth import SECURITY_SCHEME
from api.errors import EXCEPTION_HANDLERS
from api.metrics import ApiMetrics, MetricsMiddleware, metrics_endpoint
from api.openapi import document_errors
from api.routes import (
    auth,
    captures,
    consumers,
    devices,
    health,
    hls,
    nodes,
    streaming,
    streams,
    viewer,
    whep,
)
from api.state import Services
from core import notify
from core.camera_urls import policy_for
from core.captures import BookmarkService, CaptureFiles, SnapshotService, jobs_in_progress
from core.clients import ClientService, admin_banner, ensure_admin
from core.clock import utcnow
from core.consumers import ConsumerService
from core.credentials import CredentialBox
from core.db import close_database, open_database
from core.detection_settings import DetectionSettingsService
from core.devices import DeviceService
from core.events import EventService
from core.nodes import NodeRegistry
from core.notify import Notifier
from core.quotas import CONSUMER_RETRY_AFTER_S, JOB_RETRY_AFTER_S, CallerQuota
from core.recording_sessions import RecordingSessionService
from core.recordings import RecordingIndex
from core.settings import Settings, get_settings
from core.streams import StreamService
from core.system_settings import SystemSettingsService
from core.system_status import SystemStatusService
from core.throttle import LoginThrottle
from core.users import UserService, admin_user_banner, ensure_admin_user
from core.workers import WorkerRegistry
from jobs.actors import declare_actors
from jobs.broker import build_broker
from jobs.client import JobClient
from jobs.control import StreamControl


def _lifespan(settings: Settings):  # type: ignore[no-untyped-def]
    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        # Waiting on job results and hashing secrets run in threads: give them room.
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=64))
        engine = await open_database(settings.database)
        assert settings.redis.url is not None, "REDIS_URL must be set before the API starts"
        redis = Redis.from_url(settings.redis.url)
        broker = build_broker(settings.redis)
        throttle = LoginThrottle(
            redis, settings.redis.namespace, settings.auth.max_failed_logins,
            settings.auth.failed_login_window_s,
        )
        consumers = ConsumerService()
        notifier = Notifier(settings.redis.url, settings.redis.namespace)
        streams = StreamService(consumers, notifier)
        nodes = NodeRegistry(settings.media.lease_s)
        jobs = JobClient(broker, declare_actors(broker))
        index = RecordingIndex(settings.media.recordings_dir(settings.server.data_dir))
        files = CaptureFiles(settings.server.data_dir)
        system_settings = SystemSettingsService(
            settings.media.recordings_dir(settings.server.data_dir)
        )
        detection_settings = DetectionSettingsService(system_settings)
        devices = DeviceService(CredentialBox(settings.auth.credentials_key), policy_for(settings),
                                on_delete=(detection_settings.forget_camera,))
        app.state.services = Services(
            settings=settings,
            engine=engine,
            redis=redis,
            clients=ClientService(settings.auth, throttle),
            devices=devices,
            streams=streams,
            consumers=consumers,
            nodes=nodes,
            jobs=jobs,
            control=StreamControl(streams, nodes, jobs),
            recordings=index,
            snapshots=SnapshotService(files, index),
            bookmarks=BookmarkService(files, index),
            users=UserService(settings.auth, LoginThrottle(
                redis, f"{settings.redis.namespace}:users", settings.auth.max_failed_logins,
                settings.auth.failed_login_window_s, subject="account",
            )),
            system_settings=system_settings,
            detection_settings=detection_settings,
            events=EventService(settings.server.data_dir),
            system_status=SystemStatusService(
                utcnow(), devices, streams, nodes,
                WorkerRegistry(redis, settings.redis.namespace), index,
            ),
            recording_sessions=RecordingSessionService(
                settings.server.data_dir / "recordings" / "sessions", index,
                functools.partial(notify.publish, redis, settings.redis.namespace),
            ),
            consumer_quota=CallerQuota(
                redis, settings.redis.namespace, "consumers",
                settings.auth.max_consumers_per_client, in_flight=consumers.open_among,
                setting="VAS_MAX_CONSUMERS_PER_CLIENT", what="open consumers",
                retry_after_s=CONSUMER_RETRY_AFTER_S),
            job_quota=CallerQuota(
                redis, settings.redis.namespace, "jobs", settings.auth.max_jobs_per_client,
                in_flight=jobs_in_progress, setting="VAS_MAX_JOBS_PER_CLIENT",
                what="snapshot and bookmark jobs in progress", retry_after_s=JOB_RETRY_AFTER_S),
        )
        generated = await ensure_admin(settings.auth)
        if generated is not None:
            print(admin_banner(settings.auth.admin_client_id, generated), flush=True)
        password = await ensure_admin_user(settings.auth)
        if password is not None:
            print(admin_user_banner(settings.auth.admin_email, password), flush=True)
        # Everything built so far lives as long as the process: out of the collector's
        # sight, a full collection walks only what requests allocate (tail latency).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            broker.close()
            notifier.close()
            await redis.aclose()
            await close_database(engine)

    return lifespan


MAX_BODY_BYTES = 1024 * 1024


def create_app(settings: Settings | None = None) -> Litestar:
    """Build the API for `settings` (default: from the environment)."""
    settings = settings or get_settings()
    openapi = OpenAPIConfig(
        title="VAS",
        version="2.0.0",
        description="Video gateway for IP cameras. Two API families: the VAS guide's (V1 "
        "devices, V2 streams, auth and health; errors as {\"detail\": …}) and OmniSight's "
        "(base /api/v1: users, system settings, WebSocket /api/v1/ws; errors as "
        "{\"error\": {code, message, details}}). Both take the same bearer tokens.",
        path="/schema",
        render_plugins=[SwaggerRenderPlugin()],
        components=Components(security_schemes={
            SECURITY_SCHEME: SecurityScheme(
                type="http", scheme="bearer", bearer_format="JWT",
                description="Access token from POST /v2/auth/token (API clients) or POST "
                "/api/v1/auth/login (users, scopes from their role); the scope a route needs "
                "is listed in its security requirement.",
            )
        }),
    )
    metrics = ApiMetrics()
    app = Litestar(
        route_handlers=[
            auth.router, devices.router, streaming.router, streams.router, hls.router,
            consumers.router, whep.router, captures.router,
            health.router, nodes.router, viewer.router, omnisight.router, metrics_endpoint,
        ],
        middleware=[DefineMiddleware(MetricsMiddleware, metrics=metrics)],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=[_lifespan(settings), omnisight.ws_lifespan(settings)],
        openapi_config=openapi,
        logging_config=None,  # every VAS process logs through core.logs
        # Every body is JSON or an SDP offer; anything larger is refused with 413 before
        # it is read (Litestar checks Content-Length, then counts a chunked body).
        request_max_body_size=MAX_BODY_BYTES,
        debug=False,
    )
    app.state.metrics = metrics
    document_errors(app)
    return app


def app_from_env() -> Litestar:
    """uvicorn factory entry point."""
    return create_app()
