"""Guide §3.2: V1 devices (legacy; open unless VAS_V1_AUTH=required)."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Router, delete, get, post, put
from litestar.params import FromPath, JSONBody, QueryParameter

from api.auth import scoped_v1
from api.params import parse_id
from api.schemas import DeviceCreateBody, DeviceUpdateBody, transcode_settings
from api.state import services_of
from api.views import DeviceStatusView, DeviceView, device_status_view, device_view
from core.devices import DeviceChanges

# Changing cameras needs the OmniSight `cameras:write` (admins); users hold streams:write to
# start and stop streams, which must not let them change cameras (docs/omnisight.md).
CAMERAS_WRITE = "cameras:write"


@get("/", **scoped_v1("streams:read"))
async def list_devices(
    request: Request[Any, Any, Any],
    skip: Annotated[int, QueryParameter(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
) -> list[DeviceView]:
    """List cameras, oldest first."""
    services = services_of(request.app)
    rows = await services.devices.page(skip, limit)
    return [device_view(services.devices, row) for row in rows]


@post("/", status_code=201, **scoped_v1(CAMERAS_WRITE))
async def create_device(
    request: Request[Any, Any, Any], data: JSONBody[DeviceCreateBody]
) -> DeviceView:
    """Register a camera. Only rtsp:// and rtsps:// URLs; a password in the URL is kept
    encrypted and shown masked."""
    services = services_of(request.app)
    row = await services.devices.create(DeviceChanges(
        name=data.name, description=data.description, rtsp_url=data.rtsp_url,
        location=data.location, rtsp_transport=data.rtsp_transport,
        settings=transcode_settings(data) or None,
    ))
    return device_view(services.devices, row)


@get("/{device_id:str}", **scoped_v1("streams:read"))
async def get_device(request: Request[Any, Any, Any], device_id: FromPath[str]) -> DeviceView:
    """One camera."""
    ident = parse_id(device_id, "device_id")
    services = services_of(request.app)
    return device_view(services.devices, await services.devices.get(ident))


@put("/{device_id:str}", **scoped_v1(CAMERAS_WRITE))
async def update_device(
    request: Request[Any, Any, Any], device_id: FromPath[str], data: JSONBody[DeviceUpdateBody]
) -> DeviceView:
    """Change the given fields of a camera; fields left out keep their value."""
    ident = parse_id(device_id, "device_id")
    services = services_of(request.app)
    transcode = transcode_settings(data)
    settings = None
    if transcode:  # merged into the camera's other settings
        settings = {**((await services.devices.get(ident)).settings or {}), **transcode}
    row = await services.devices.update(ident, DeviceChanges(
        name=data.name, description=data.description, rtsp_url=data.rtsp_url,
        location=data.location, rtsp_transport=data.rtsp_transport, settings=settings,
    ))
    return device_view(services.devices, row)


@delete("/{device_id:str}", status_code=204, **scoped_v1(CAMERAS_WRITE))
async def delete_device(request: Request[Any, Any, Any], device_id: FromPath[str]) -> None:
    """Delete a camera (409 while it has an active stream; its history is kept)."""
    ident = parse_id(device_id, "device_id")
    await services_of(request.app).devices.delete(ident)


@get("/{device_id:str}/status", **scoped_v1("streams:read"))
async def device_status(
    request: Request[Any, Any, Any], device_id: FromPath[str]
) -> DeviceStatusView:
    """The camera with its `streaming` block."""
    ident = parse_id(device_id, "device_id")
    services = services_of(request.app)
    row = await services.devices.get(ident)
    stream = await services.streams.active_for_camera(ident)
    return device_status_view(services.devices, row, stream)


router = Router(
    path="/api/v1/devices",
    route_handlers=[list_devices, create_device, get_device, update_device, delete_device,
                    device_status],
    tags=["devices (v1)"],
)
