"""Container health check: GET the process's own HTTP endpoint, when it has one.

`vas up` and `vas api` answer `/v2/health/live` on VAS_PORT. `vas worker`, `vas detector`
and `vas media-node` serve their process metrics on VAS_METRICS_PORT when it is set
(`/metrics`, jobs/metrics.py), so the check GETs that; without the setting they have no
HTTP port, and the check passes while the container's main process runs (the engine runs
the check only then). Either server listens on the first address of VAS_HOST; when that is
every address (0.0.0.0, as in the image), the check asks loopback. Exit 0 is healthy, 1 is
not.
"""

from __future__ import annotations

import os
import sys
import urllib.request
from collections.abc import Mapping
from pathlib import Path

HTTP_ROLES = {"up", "api"}
METRICS_ROLES = {"worker", "detector", "media-node"}


def role() -> str:
    """The `vas` command of the container's main process (PID 1)."""
    args = Path("/proc/1/cmdline").read_bytes().split(b"\0")
    words = [a.decode() for a in args if a]
    return words[-1] if words else ""


def _host(env: Mapping[str, str]) -> str:
    host = (env.get("VAS_HOST") or "127.0.0.1").split(",")[0].strip()
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 - listening everywhere: ask loopback
        host = "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def probe_url(role_name: str, env: Mapping[str, str]) -> str | None:
    """The URL the check GETs for a container running `vas <role_name>`, or None when the
    process serves no HTTP (the check then passes while it runs)."""
    if role_name in HTTP_ROLES:
        return f"http://{_host(env)}:{env.get('VAS_PORT') or '8000'}/v2/health/live"
    metrics_port = (env.get("VAS_METRICS_PORT") or "").strip()
    if role_name in METRICS_ROLES and metrics_port not in ("", "0"):  # 0: no metrics server
        return f"http://{_host(env)}:{metrics_port}/metrics"
    return None


def main(role_name: str | None = None, env: Mapping[str, str] = os.environ) -> int:
    url = probe_url(role() if role_name is None else role_name, env)
    if url is None:
        return 0
    try:
        with urllib.request.urlopen(url, timeout=4) as response:  # noqa: S310 - http:// only
            return 0 if response.status == 200 else 1
    except OSError as exc:
        print(f"unhealthy: {url}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
