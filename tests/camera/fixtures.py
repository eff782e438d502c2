"""Fixtures for the RTSP test camera (registered for the whole suite by tests/conftest.py)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.camera import CameraProfile, LateRtspProxy, SilentRtspServer, TestCamera

StartCamera = Callable[..., TestCamera]


@pytest.fixture
def start_camera() -> Iterator[StartCamera]:
    """Start cameras (``start_camera(fps=25)``); every one is stopped after the test."""
    cameras: list[TestCamera] = []

    def start(profile: CameraProfile | None = None, **changes: Any) -> TestCamera:
        camera = TestCamera(dataclasses.replace(profile or CameraProfile(), **changes))
        cameras.append(camera)
        camera.start()
        return camera

    yield start
    for camera in cameras:
        camera.stop()


@pytest.fixture
def silent_server() -> Iterator[SilentRtspServer]:
    """A server that accepts RTSP connections and never answers."""
    with SilentRtspServer() as server:
        yield server


@pytest.fixture
def late_camera(start_camera: StartCamera) -> Iterator[LateRtspProxy]:
    """A real camera behind a relay that answers only after 7 s (a camera on a slow network)."""
    camera = start_camera()
    with LateRtspProxy(camera.port, delay=7.0, mount=camera.profile.mount) as proxy:
        yield proxy
