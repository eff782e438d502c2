"""Container health check: GET /v2/health/live when this container serves the API.

`vas up` and `vas api` answer HTTP on VAS_PORT; `vas worker` and `vas media-node` have no
HTTP port yet, so for them the check passes while the container's main process runs (the
engine runs the check only then). Exit 0 is healthy, 1 is not.
"""

from __future__ import annotations

import os
import sys
import urllib.request
from pathlib import Path

HTTP_ROLES = {"up", "api"}


def role() -> str:
    """The `vas` command of the container's main process (PID 1)."""
    args = Path("/proc/1/cmdline").read_bytes().split(b"\0")
    words = [a.decode() for a in args if a]
    return words[-1] if words else ""


def main() -> int:
    if role() not in HTTP_ROLES:
        return 0
    host = (os.environ.get("VAS_HOST") or "127.0.0.1").split(",")[0].strip()
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 - listening everywhere: ask loopback
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    url = f"http://{host}:{os.environ.get('VAS_PORT') or '8000'}/v2/health/live"
    try:
        with urllib.request.urlopen(url, timeout=4) as response:
            return 0 if response.status == 200 else 1
    except OSError as exc:
        print(f"unhealthy: {url}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
