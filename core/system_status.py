"""What the system is doing, from reality: hooks that other areas fill.

Detection does not exist yet: `detection_active` and `events_by_type` answer "nothing" until
the detection change replaces them with reads of its tables.
"""

from __future__ import annotations

import uuid
from datetime import datetime


async def detection_active(camera_id: uuid.UUID) -> bool:
    """Whether detection runs on the camera's stream (no detection yet: never)."""
    del camera_id
    return False


async def events_by_type(since: datetime) -> dict[str, int]:
    """Detection events since `since`, counted by type (no detection yet: none)."""
    del since
    return {}
