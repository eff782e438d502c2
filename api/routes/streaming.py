"""Guide §3.2: start-stream, stop-stream and validate on V1 devices."""

from __future__ import annotations

from typing import Any

from litestar import Request, Router, post
from litestar.params import FromPath, JSONBody

from api.auth import scoped_v1
from api.params import parse_id
from api.schemas import ValidateBody
from api.state import services_of
from api.views import StartStreamView, StopStreamView, ValidateView, start_view
from core.credentials import mask_text, split_rtsp_url, with_password
from jobs.node.protocol import Probed

VALIDATE_DEADLINE_S = 25.0


@post("/{device_id:str}/start-stream", status_code=200, **scoped_v1("streams:write"))
async def start_stream(
    request: Request[Any, Any, Any], device_id: FromPath[str]
) -> StartStreamView:
    """Start the camera's stream and answer when it is LIVE (30 s at most).

    A camera that is already streaming answers at once with `reconnect: true` and the same
    ids. Failures carry the guide's codes: 502 RTSP_CONNECTION_FAILED, 504 RTSP_TIMEOUT,
    502 SSRC_CAPTURE_FAILED, 503 MEDIASOUP_UNAVAILABLE.
    """
    ident = parse_id(device_id, "device_id")
    services = services_of(request.app)
    device = await services.devices.get(ident)
    await services.devices.check_url(device.rtsp_url)  # 400 before any node connects
    result = await services.control.start(ident)
    producer = await services.streams.producer(result.stream.id)
    return start_view(ident, result.stream, producer, result.reconnect)


@post("/{device_id:str}/stop-stream", status_code=200, **scoped_v1("streams:write"))
async def stop_stream(
    request: Request[Any, Any, Any], device_id: FromPath[str]
) -> StopStreamView:
    """Stop the camera's stream: ingest ends, consumers close, the stream becomes CLOSED.

    `stopped` is false when the camera had no active stream.
    """
    ident = parse_id(device_id, "device_id")
    services = services_of(request.app)
    await services.devices.get(ident)
    stream = await services.streams.active_for_camera(ident)
    stopped = stream is not None and await services.control.stop(stream.id)
    return {"status": "success", "device_id": str(ident), "stopped": stopped}


@post("/validate", status_code=200, **scoped_v1("streams:write"))
async def validate(
    request: Request[Any, Any, Any], data: JSONBody[ValidateBody]
) -> ValidateView:
    """Probe an RTSP URL for real (open it, read its video) without saving a device."""
    services = services_of(request.app)
    url, password = split_rtsp_url(data.rtsp_url.strip())
    shown = with_password(url, password, masked=True)
    pinned = await services.devices.check_url(url)  # 400 with the reason, nothing probed
    outcome = await services.jobs.validate(with_password(pinned.url, password, masked=False),
                                           data.rtsp_transport or "tcp", VALIDATE_DEADLINE_S)
    if isinstance(outcome, Probed):
        return {
            "valid": True,
            "rtsp_url": shown,
            "ssrc": outcome.ssrc,
            "message": "Device validated successfully",
            "video": {"codec": outcome.codec, "width": outcome.width, "height": outcome.height,
                      "fps": outcome.fps, "profile": outcome.profile},
        }
    detail = mask_text(outcome.detail or "")
    return {
        "valid": False,
        "error": f"{outcome.error}: {detail}" if detail else outcome.error,
        "error_code": outcome.error_code,
        "rtsp_url": shown,
    }


router = Router(path="/api/v1/devices", route_handlers=[start_stream, stop_stream, validate],
                tags=["devices (v1)"])
