"""OmniSight camera request bodies (camelCase). msgspec checks types; core checks values."""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import UNSET, UnsetType

Text = Annotated[str, msgspec.Meta(max_length=255)]
TranscodeMode = Annotated[str, msgspec.Meta(pattern="^(auto|always|never)$")]


class CameraSettingsBody(msgspec.Struct, rename="camel", forbid_unknown_fields=True,
                         omit_defaults=True):
    """What the camera is set to deliver (kept and shown), and how WebRTC transcodes it
    (docs/codecs.md). A key sent as null is removed (its default applies)."""

    resolution: Annotated[str, msgspec.Meta(max_length=32)] | UnsetType | None = UNSET
    framerate: Annotated[int, msgspec.Meta(ge=1, le=240)] | UnsetType | None = UNSET
    transcode: TranscodeMode | UnsetType | None = UNSET
    transcode_width: Annotated[int, msgspec.Meta(ge=16, le=7680)] | UnsetType | None = UNSET
    transcode_height: Annotated[int, msgspec.Meta(ge=16, le=4320)] | UnsetType | None = UNSET
    transcode_kbps: Annotated[int, msgspec.Meta(ge=100, le=50_000)] | UnsetType | None = UNSET

    def given(self) -> dict[str, object]:
        """The keys sent, under the device settings' names (snake_case; null included)."""
        return {name: getattr(self, name) for name in self.__struct_fields__
                if getattr(self, name) is not UNSET}


class CameraCreateBody(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    """POST /cameras."""

    name: Text
    rtsp_url: Annotated[str, msgspec.Meta(max_length=2048)]
    username: Text | None = None
    password: Annotated[str, msgspec.Meta(max_length=1024)] | None = None
    ip_address: Text | None = None
    location: Text | None = None
    model: Text | None = None
    settings: CameraSettingsBody | None = None


class CameraUpdateBody(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    """PUT /cameras/:id: the fields given change, the others are kept."""

    name: Text | None = None
    rtsp_url: Annotated[str, msgspec.Meta(max_length=2048)] | None = None
    username: Text | None = None
    password: Annotated[str, msgspec.Meta(max_length=1024)] | None = None
    ip_address: Text | None = None
    location: Text | None = None
    model: Text | None = None
    settings: CameraSettingsBody | None = None
