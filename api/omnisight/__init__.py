"""The OmniSight API family (base `/api/v1`): its routes under one router whose exception
handlers give every error the OmniSight shape, and the WebSocket's lifespan."""

from __future__ import annotations

from litestar import Router

from api.omnisight import (
    auth,
    cameras,
    detection,
    events,
    live_webrtc,
    media,
    recordings,
    system,
    users,
)
from api.omnisight.errors import EXCEPTION_HANDLERS
from api.omnisight.ws import ws, ws_lifespan

router = Router(
    path="/api/v1",
    route_handlers=[auth.router, users.router, system.router, cameras.router, detection.router,
                    events.router, recordings.router, media.router, live_webrtc.router, ws],
    exception_handlers=EXCEPTION_HANDLERS,
)

__all__ = ["router", "ws_lifespan"]
