"""Detection tests: real media-node processes on real RTSP scene cameras, real Redis and
database; short heartbeats (metrics are reported every heartbeat) and a small `detect`
queue bound so the skip path is exercised."""

from __future__ import annotations

import pytest

from tests.omnisight.conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.streaming.conftest import FAST

DETECT_QUEUE_MAX = 2


@pytest.fixture
def settings_env(settings_env: dict[str, str]) -> dict[str, str]:
    return {**settings_env, **FAST, "VAS_DETECT_QUEUE_MAX": str(DETECT_QUEUE_MAX),
            "VAS_ADMIN_EMAIL": ADMIN_EMAIL, "VAS_ADMIN_PASSWORD": ADMIN_PASSWORD}
