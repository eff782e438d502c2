"""The camera URL guard where connections are made: every open of a camera (start, each
reconnect, validate's probe) checks the URL again and connects to the address it checked."""

from __future__ import annotations

from collections.abc import Callable

from core.camera_urls import CameraUrlRefused, check_camera_url, policy_for
from core.settings import Settings
from media.errors import SourceRefused


def camera_resolver(settings: Settings) -> Callable[[str], str]:
    """For `RtspIngest(resolve=…)`: the URL pinned to its checked address, or `SourceRefused`
    (no connection attempted). Blocks on DNS: ingest calls it on its own thread."""
    policy = policy_for(settings)

    def resolve(url: str) -> str:
        try:
            return check_camera_url(url, policy).url
        except CameraUrlRefused as exc:
            raise SourceRefused(exc.message) from None

    return resolve
