"""The disk that holds the recordings, as `/system/status` and retention see it.

Retention itself (`storage.*` of the system settings, over the recorder's segments and the
recordings' segments alike) is `core.recording_retention`, run by the hourly
`purge_recordings` job.
"""

from __future__ import annotations

import logging
import math
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)
DiskUsage = Callable[[Path], Any]  # shutil.disk_usage: (total, used, free)


@dataclass(frozen=True, slots=True)
class DiskState:
    """The recordings' disk: bytes, and the share used in % (rounded up to 0.1)."""

    total: int
    used: int
    free: int

    @property
    def percent(self) -> float:
        return math.ceil(1000 * self.used / self.total) / 10 if self.total else 0.0


def disk_state(path: Path, disk_usage: DiskUsage = shutil.disk_usage) -> DiskState:
    """The disk that holds `path` (created if missing)."""
    path.mkdir(parents=True, exist_ok=True)
    total, used, free = disk_usage(path)
    return DiskState(int(total), int(used), int(free))
