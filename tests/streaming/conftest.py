"""Media nodes and workers as real processes beside the in-process API (see
tests/vas_fixtures.py), with short heartbeats and timeouts to keep these tests quick.

The defaults themselves are exercised in tests/defaults.
"""

from __future__ import annotations

import pytest

FAST = {
    "VAS_NODE_HEARTBEAT_MS": "500",
    "VAS_NODE_LEASE_MS": "3000",
    "VAS_RTSP_OPEN_TIMEOUT_MS": "4000",
    "VAS_RTSP_READ_TIMEOUT_MS": "2000",
}


@pytest.fixture
def settings_env(settings_env: dict[str, str]) -> dict[str, str]:
    return {**settings_env, **FAST}
