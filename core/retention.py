"""Retention of recordings, applying the system storage settings (`storage.*`).

- `autoCleanup: false`: nothing is removed automatically.
- `retentionDays`: segments that ended longer ago are removed. `VAS_HLS_RETENTION_HOURS`
  (default 168, the same 7 days) stays the operator's ceiling: the shorter of the two wins.
- `maxUsage` (% of the disk that holds the recordings): while the disk is fuller than
  that, the oldest segments are removed first, until enough bytes are freed or none is
  left. The disk is measured, not the recordings alone: other files count too.
"""

from __future__ import annotations

import logging
import math
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from core.clock import utcnow
from core.recordings import RecordingIndex
from core.system_settings import StorageSettings

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


@dataclass(frozen=True, slots=True)
class RetentionOutcome:
    """What one retention run did, and the disk afterwards."""

    expired: int  # segments older than retentionDays
    for_space: int  # oldest segments removed to bring the disk under maxUsage
    disk: DiskState
    max_usage: int

    @property
    def above_limit(self) -> bool:
        return self.disk.percent > self.max_usage


def disk_state(path: Path, disk_usage: DiskUsage = shutil.disk_usage) -> DiskState:
    """The disk that holds `path` (created if missing)."""
    path.mkdir(parents=True, exist_ok=True)
    total, used, free = disk_usage(path)
    return DiskState(int(total), int(used), int(free))


async def apply_retention(index: RecordingIndex, storage: StorageSettings,
                          ceiling_h: int | None = None,
                          disk_usage: DiskUsage = shutil.disk_usage) -> RetentionOutcome:
    """One retention run over every recording."""
    expired = for_space = 0
    if storage.auto_cleanup:
        kept = timedelta(days=storage.retention_days)
        if ceiling_h is not None:
            kept = min(kept, timedelta(hours=ceiling_h))
        expired = await index.purge_before(utcnow() - kept)
        disk = disk_state(index.root, disk_usage)
        allowed = disk.total * storage.max_usage // 100
        if disk.used > allowed:
            for_space, freed = await index.purge_oldest(disk.used - allowed)
            logger.info("retention freed %d bytes (%d oldest segments): the disk was %.1f %% "
                        "full, above maxUsage %d %%", freed, for_space, disk.percent,
                        storage.max_usage)
    return RetentionOutcome(expired, for_space, disk_state(index.root, disk_usage),
                            storage.max_usage)
