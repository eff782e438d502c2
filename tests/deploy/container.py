"""podman as the tests drive it: the settings that work on these machines (runc, no default
ulimits; see deploy/build-image.sh), and containers that are always removed."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = ROOT / "deploy" / "build-image.sh"
BUILD_CACHE = Path(os.environ.get("VAS_BUILD_CACHE", "/var/cache/vas-build"))
# A tag of this run's own: builds of other checkouts on the machine may run meanwhile, and
# the test must run the image of this tree. Layers stay in podman's cache for the next run.
TEST_IMAGE = f"localhost/vas:test-{uuid.uuid4().hex[:10]}"


def podman_env() -> dict[str, str]:
    return dict(os.environ, VAS_BUILD_CACHE=str(BUILD_CACHE),
                CONTAINERS_CONF=str(BUILD_CACHE / "containers.conf"))


def require_tools() -> None:
    """A missing tool fails the test: scripts/install-test-deps.sh installs them."""
    missing = [t for t in ("podman", "runc", "mmdebstrap") if shutil.which(t) is None]
    assert not missing, f"missing {missing}: run scripts/install-test-deps.sh (make test-deps)"


def build_image(image: str = TEST_IMAGE) -> float:
    """Build the image of the current tree with deploy/build-image.sh; returns seconds."""
    require_tools()
    began = time.monotonic()
    result = subprocess.run(["bash", str(BUILD_SCRIPT), image], env=podman_env(),
                            capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, f"build failed:\n{result.stdout[-6000:]}\n{result.stderr[-6000:]}"
    return time.monotonic() - began


def podman(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["podman", "--runtime", "runc", *args], env=podman_env(),
                            capture_output=True, text=True, timeout=timeout)
    if check:
        assert result.returncode == 0, f"podman {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result


def remove_image(image: str) -> None:
    podman("rmi", image, check=False, timeout=120)


def remove_container(name: str) -> None:
    podman("rm", "--force", "--time", "5", name, check=False, timeout=60)
