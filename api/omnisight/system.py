"""OmniSight system settings."""

from __future__ import annotations

from typing import Any

from litestar import Request, Router, get, put
from litestar.params import JSONBody

from api.omnisight.guards import omni_scoped
from api.omnisight.schemas import SystemSettingsBody
from api.omnisight.system_views import SystemStatusView, system_status_view
from api.omnisight.views import SystemSettingsUpdatedView
from api.state import services_of
from core import detection_changes


@get("/status", **omni_scoped("system:read"))
async def get_system_status(request: Request[Any, Any, Any]) -> SystemStatusView:
    """The system from reality: processes and their heartbeats, the recordings' disk,
    cameras by status, recordings, events of the last 24 hours."""
    return system_status_view(await services_of(request.app).system_status.get())


@get("/settings", **omni_scoped("system:read"))
async def get_system_settings(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """Storage, notification, detection and recording settings of the whole system."""
    settings = await services_of(request.app).system_settings.get()
    return settings.as_document()


@put("/settings", status_code=200, **omni_scoped("system:write"))
async def update_system_settings(
    request: Request[Any, Any, Any], data: JSONBody[SystemSettingsBody]
) -> SystemSettingsUpdatedView:
    """Change the sections given, and in them only the fields given (admin). Every value
    is checked against its range; `storage.recordingsPath` is read-only."""
    # `data` checked the shape (and documents it); Litestar decodes leniently ("90" → 90),
    # so core validates the JSON exactly as sent, strictly.
    sent: dict[str, Any] = await request.json()
    services = services_of(request.app)
    settings = await services.system_settings.update(sent)
    if isinstance(sent, dict) and "detection" in sent:  # the global detection settings too
        await detection_changes.announce(services.redis, services.settings.redis.namespace,
                                         detection_changes.GLOBAL)
    return {"message": "System settings updated successfully",
            "settings": settings.as_document()}


router = Router(path="/system",
                route_handlers=[get_system_status, get_system_settings, update_system_settings],
                tags=["OmniSight: system"])
