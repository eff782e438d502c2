"""Request bodies. msgspec validates types strictly; the services validate values."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

Text255 = Annotated[str, msgspec.Meta(max_length=255)]


class CreateClientBody(msgspec.Struct):
    """POST /v2/auth/clients."""

    client_id: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    scopes: Annotated[list[str], msgspec.Meta(min_length=1, max_length=32)]


class TokenBody(msgspec.Struct):
    """POST /v2/auth/token."""

    client_id: Annotated[str, msgspec.Meta(max_length=128)]
    client_secret: Annotated[str, msgspec.Meta(max_length=512)]


class RefreshBody(msgspec.Struct):
    """POST /v2/auth/token/refresh."""

    refresh_token: Annotated[str, msgspec.Meta(max_length=512)]


class DeviceCreateBody(msgspec.Struct):
    """POST /api/v1/devices."""

    name: Text255
    rtsp_url: Annotated[str, msgspec.Meta(max_length=2048)]
    description: Annotated[str, msgspec.Meta(max_length=4000)] | None = None
    location: Text255 | None = None
    rtsp_transport: Annotated[str, msgspec.Meta(pattern="^(tcp|udp)$")] | None = None
    # WebRTC transcoding of the camera's video (docs/codecs.md); kept in the device's settings.
    transcode: Annotated[str, msgspec.Meta(pattern="^(auto|always|never)$")] | None = None
    transcode_width: Annotated[int, msgspec.Meta(ge=16, le=7680)] | None = None
    transcode_height: Annotated[int, msgspec.Meta(ge=16, le=4320)] | None = None
    transcode_kbps: Annotated[int, msgspec.Meta(ge=100, le=50_000)] | None = None


class DeviceUpdateBody(msgspec.Struct):
    """PUT /api/v1/devices/{id}: the fields given are changed, the others kept."""

    name: Text255 | None = None
    rtsp_url: Annotated[str, msgspec.Meta(max_length=2048)] | None = None
    description: Annotated[str, msgspec.Meta(max_length=4000)] | None = None
    location: Text255 | None = None
    rtsp_transport: Annotated[str, msgspec.Meta(pattern="^(tcp|udp)$")] | None = None
    # WebRTC transcoding of the camera's video (docs/codecs.md); kept in the device's settings.
    transcode: Annotated[str, msgspec.Meta(pattern="^(auto|always|never)$")] | None = None
    transcode_width: Annotated[int, msgspec.Meta(ge=16, le=7680)] | None = None
    transcode_height: Annotated[int, msgspec.Meta(ge=16, le=4320)] | None = None
    transcode_kbps: Annotated[int, msgspec.Meta(ge=100, le=50_000)] | None = None


class ValidateBody(msgspec.Struct):
    """POST /api/v1/devices/validate."""

    rtsp_url: Annotated[str, msgspec.Meta(max_length=2048)]
    name: Text255 | None = None
    rtsp_transport: Annotated[str, msgspec.Meta(pattern="^(tcp|udp)$")] | None = None


class CreateStreamBody(msgspec.Struct):
    """POST /v2/streams."""

    camera_id: Annotated[str, msgspec.Meta(max_length=64)]


class ConsumeBody(msgspec.Struct):
    """POST /v2/streams/{id}/consume."""

    client_id: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    rtp_capabilities: dict[str, Any]
    # VAS: which of the stream's media the consumer takes (audio: only when the camera
    # sends audio, as Opus; docs/codecs.md).
    kind: Literal["video", "audio"] = "video"


class ConnectBody(msgspec.Struct):
    """POST /v2/streams/{id}/consumers/{cid}/connect."""

    dtls_parameters: dict[str, Any]


class IceCandidateBody(msgspec.Struct):
    """POST /v2/streams/{id}/consumers/{cid}/ice-candidate."""

    candidate: dict[str, Any] | str | None


Metadata = Annotated[dict[str, Any], msgspec.Meta(max_length=64)]


class SnapshotBody(msgspec.Struct):
    """POST /v2/streams/{id}/snapshots."""

    source: str = "live"
    timestamp: datetime | None = None
    created_by: str | None = None
    metadata: Metadata | None = None


class BookmarkBody(msgspec.Struct):
    """POST /v2/streams/{id}/bookmarks."""

    source: str = "live"
    center_timestamp: datetime | None = None
    before_seconds: float = 5.0
    after_seconds: float = 10.0
    label: str | None = None
    event_type: str | None = None
    confidence: float | None = None
    tags: Annotated[list[str], msgspec.Meta(max_length=32)] | None = None
    created_by: str | None = None
    metadata: Metadata | None = None


class BookmarkUpdateBody(msgspec.Struct):
    """PUT /v2/bookmarks/{id}: the fields given are changed."""

    label: str | msgspec.UnsetType | None = msgspec.UNSET
    event_type: str | msgspec.UnsetType | None = msgspec.UNSET
    tags: Annotated[list[str], msgspec.Meta(max_length=32)] | msgspec.UnsetType = msgspec.UNSET
    metadata: Metadata | msgspec.UnsetType | None = msgspec.UNSET


def transcode_settings(data: DeviceCreateBody | DeviceUpdateBody) -> dict[str, Any]:
    """The transcode fields given in a device body, as device settings."""
    given = {"transcode": data.transcode, "transcode_width": data.transcode_width,
             "transcode_height": data.transcode_height, "transcode_kbps": data.transcode_kbps}
    return {key: value for key, value in given.items() if value is not None}
