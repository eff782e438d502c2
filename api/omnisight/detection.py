"""OmniSight detection settings: the global defaults and each camera's own
(docs/detection.md, "Settings")."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Request, Router, get, put
from litestar.params import FromPath, JSONBody

from api.omnisight.guards import omni_scoped
from api.omnisight.schemas import DetectionSettingsBody
from api.omnisight.views import SystemSettingsUpdatedView
from api.state import services_of
from core import detection_changes
from core.errors import NotFound
from core.recording_sessions import parse_id


async def _camera(request: Request[Any, Any, Any], camera_id: uuid.UUID) -> None:
    try:
        await services_of(request.app).devices.get(camera_id)
    except NotFound as error:
        raise NotFound(f"Camera {camera_id} not found", details={
            "resourceType": "Camera", "resourceId": str(camera_id)}) from error


@get("/detection/settings", **omni_scoped("detection:read"))
async def get_detection_settings(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """The global detection settings: what every camera runs unless it sets a field itself."""
    settings = await services_of(request.app).detection_settings.global_settings(fresh=True)
    return settings.as_document()


@put("/detection/settings", status_code=200, **omni_scoped("detection:write"))
async def update_detection_settings(
    request: Request[Any, Any, Any], data: JSONBody[DetectionSettingsBody]
) -> SystemSettingsUpdatedView:
    """Change the fields given (admin). `enabled`, `detectionInterval` and `minConfidence`
    are the system settings' `detection` section too."""
    # `data` documents the shape; core validates the JSON exactly as sent, strictly.
    sent: Any = await request.json()
    services = services_of(request.app)
    settings = await services.detection_settings.update_global(sent)
    await detection_changes.announce(services.redis, services.settings.redis.namespace,
                                     detection_changes.GLOBAL)
    return {"message": "Detection settings updated successfully",
            "settings": settings.as_document()}


@get("/cameras/{camera_id:str}/detection", **omni_scoped("detection:read"))
async def get_camera_detection(
    request: Request[Any, Any, Any], camera_id: FromPath[str]
) -> dict[str, Any]:
    """The settings the camera runs with: its own fields over the global settings."""
    ident = parse_id(camera_id, "Camera")
    await _camera(request, ident)
    settings = await services_of(request.app).detection_settings.camera_settings(
        ident, fresh=True)
    return {"cameraId": str(ident), **settings.as_document()}


@put("/cameras/{camera_id:str}/detection", status_code=200, **omni_scoped("detection:write"))
async def update_camera_detection(
    request: Request[Any, Any, Any], camera_id: FromPath[str],
    data: JSONBody[DetectionSettingsBody]
) -> SystemSettingsUpdatedView:
    """Set the camera's own fields to the body (admin); a field left out follows the global
    settings. Takes effect on the running camera at once (the change is announced to the
    media nodes)."""
    ident = parse_id(camera_id, "Camera")
    await _camera(request, ident)
    sent: Any = await request.json()
    services = services_of(request.app)
    settings = await services.detection_settings.update_camera(ident, sent)
    await detection_changes.announce(services.redis, services.settings.redis.namespace,
                                     str(ident))
    return {"message": "Camera detection settings updated successfully",
            "settings": {"cameraId": str(ident), **settings.as_document()}}


router = Router(path="/", route_handlers=[
    get_detection_settings, update_detection_settings, get_camera_detection,
    update_camera_detection,
], tags=["OmniSight: detection"])
