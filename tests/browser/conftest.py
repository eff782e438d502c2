"""Fixtures for browser tests: npm packages and bundles, a network namespace, Chromium, and
a VAS server plus an RTSP test camera running inside the namespace.

The tests run as root (``ip netns`` needs it) with Debian's ``/usr/bin/chromium``, Node and
the camera's GStreamer packages (``scripts/install-test-deps.sh``). A missing piece fails
the test; nothing is skipped.
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

from tests.browser.harness import Browser, TestNetns, ensure_node_modules, stop_process
from tests.camera import SERVER_SCRIPT, SYSTEM_PYTHON, CameraProfile

logger = logging.getLogger(__name__)

VAS = str(Path(sys.executable).parent / "vas")
# The caller's VAS settings must not leak into a server the test starts.
SCRUBBED_ENV = ("REDIS_URL", "DATABASE_URL", "JWT_SECRET_KEY", "VAS_CREDENTIALS_KEY", "VAS_ENV",
                "VAS_ADMIN_CLIENT_ID", "VAS_ADMIN_CLIENT_SECRET", "VAS_PORT", "VAS_HOST",
                "VAS_DATA_DIR", "VAS_V1_AUTH", "VAS_REDIS_NAMESPACE", "VAS_WEBRTC_ANNOUNCED_IP")


@pytest.fixture(scope="session")
def browser_bundles() -> dict[str, float]:
    """npm packages installed and dist/ built once per session; returns the timings (s)."""
    return ensure_node_modules()


@pytest.fixture
def netns() -> Iterator[TestNetns]:
    """A fresh network namespace with a veth test address; removed afterwards."""
    assert os.geteuid() == 0, "browser tests create network namespaces: run them as root"
    with TestNetns() as ns:
        yield ns


@pytest.fixture
def browser(browser_bundles: dict[str, float], netns: TestNetns) -> Iterator[Browser]:
    """Debian's headless Chromium running inside ``netns``."""
    with Browser(netns) as running:
        yield running


class NetnsCamera:
    """``tests/camera/server.py`` run inside a namespace (it binds that namespace's 127.0.0.1)."""

    def __init__(self, netns: TestNetns, profile: CameraProfile | None = None) -> None:
        self.netns = netns
        self.profile = profile or CameraProfile()
        self.port = netns.free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None

    @property
    def url(self) -> str:
        """The RTSP URL as seen from inside the namespace."""
        return f"rtsp://127.0.0.1:{self.port}{self.profile.mount}"

    def start(self, timeout: float = 15.0) -> None:
        """Launch the server and return once it printed its READY line."""
        self._stderr = tempfile.TemporaryFile(prefix="netns-camera-")  # noqa: SIM115
        command = [SYSTEM_PYTHON, str(SERVER_SCRIPT), f"--port={self.port}",
                   *self.profile.server_args()]
        # A scene camera takes commands on stdin (set_motion); the others get nothing.
        stdin = subprocess.PIPE if self.profile.scene != "pattern" else subprocess.DEVNULL
        self.process = self.netns.popen(command, stdin=stdin,
                                        stdout=subprocess.PIPE, stderr=self._stderr)
        assert self.process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            if not selector.select(timeout):
                raise RuntimeError(f"camera not ready in {timeout} s: {self.stderr}")
        line = self.process.stdout.readline().decode()
        if not line.startswith("READY "):
            raise RuntimeError(f"camera said {line!r}: {self.stderr}")

    def set_motion(self, moving: bool, timeout: float = 5.0) -> None:
        """Start or stop the scene's object (as TestCamera.set_motion); returns once the
        camera confirms."""
        assert self.process is not None and self.process.stdin is not None
        assert self.process.stdout is not None
        command = f"motion {'on' if moving else 'off'}"
        self.process.stdin.write(f"{command}\n".encode())
        self.process.stdin.flush()
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            if not selector.select(timeout):
                raise RuntimeError(f"camera did not answer {command!r}: {self.stderr}")
        answer = self.process.stdout.readline().decode().strip()
        if answer != f"OK {command}":
            raise RuntimeError(f"camera answered {answer!r} to {command!r}")

    @property
    def stderr(self) -> str:
        if self._stderr is None:
            return ""
        fileno = self._stderr.fileno()
        return os.pread(fileno, os.fstat(fileno).st_size, 0).decode(errors="replace")

    def stop(self) -> None:
        """Stop the server by PID."""
        if self.process is not None:
            stop_process(self.process, timeout=5.0)
            for pipe in (self.process.stdin, self.process.stdout):
                if pipe is not None:
                    pipe.close()
            self.process = None
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None


class VasServer:
    """``vas up`` inside a namespace, on every address there (its lo and test address).

    The browser uses ``page_origin`` (http://127.0.0.1:PORT, a secure context); the test
    process uses ``api_url`` (the namespace's test address). WebRTC candidates announce the
    test address.
    """

    def __init__(self, netns: TestNetns, data_dir: Path) -> None:
        self.netns = netns
        self.data_dir = data_dir
        self.port = netns.free_port()
        self.admin_secret = "browser-test-" + uuid.uuid4().hex
        self.api_url = f"http://{netns.address}:{self.port}"
        self.page_origin = f"http://127.0.0.1:{self.port}"
        self.log_path = data_dir / "vas.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.startup_seconds = 0.0

    def start(self, timeout: float = 120.0) -> None:
        """Start ``vas up`` and return once /v2/health/ready answers 200."""
        env = {k: v for k, v in os.environ.items() if k not in SCRUBBED_ENV}
        env.update(VAS_HOST=f"127.0.0.1,{self.netns.address}", VAS_PORT=str(self.port), VAS_DATA_DIR=str(self.data_dir),
                   VAS_ADMIN_CLIENT_SECRET=self.admin_secret,
                   VAS_WEBRTC_ANNOUNCED_IP=self.netns.address)
        started = time.monotonic()
        with open(self.log_path, "wb") as log:
            self.process = self.netns.popen([VAS, "up"], env=env, cwd=self.data_dir,
                                            stdin=subprocess.DEVNULL, stdout=log,
                                            stderr=subprocess.STDOUT)
        deadline = started + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"vas up exited ({self.process.returncode}):\n{self.log}")
            try:
                if httpx.get(f"{self.api_url}/v2/health/ready", timeout=2).status_code == 200:
                    self.startup_seconds = time.monotonic() - started
                    logger.info("vas up ready in %.1f s", self.startup_seconds)
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"vas up not ready in {timeout} s:\n{self.log}")

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def client(self) -> httpx.Client:
        """An HTTP client on the API, from the test process."""
        return httpx.Client(base_url=self.api_url, timeout=30)

    def admin_token(self) -> str:
        with self.client() as http:
            answer = http.post("/v2/auth/token",
                               json={"client_id": "admin", "client_secret": self.admin_secret})
            answer.raise_for_status()
            token: str = answer.json()["access_token"]
            return token

    def stop(self) -> None:
        """Ctrl-C, as a user would; then SIGKILL whatever of its tree is left."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGINT)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            logger.warning("vas up did not stop in 30 s")
        stop_process(process)


@contextlib.contextmanager
def netns_stack(data_dir: Path, profile: CameraProfile | None = None,
                name: str = "Browser Test Camera") -> Iterator[dict[str, Any]]:
    """A namespace with a camera (``profile``), ``vas up`` with that camera registered, and
    Chromium; stopped on exit."""
    assert os.geteuid() == 0, "browser tests create network namespaces: run them as root"
    with TestNetns() as ns:
        camera = NetnsCamera(ns, profile)
        vas = VasServer(ns, data_dir)
        try:
            camera.start()
            vas.start()
            token = vas.admin_token()
            with vas.client() as http:
                device = http.post("/api/v1/devices", json={"name": name, "rtsp_url": camera.url})
                assert device.status_code == 201, device.text
            with Browser(ns) as browser:
                yield {"netns": ns, "camera": camera, "vas": vas, "browser": browser,
                       "token": token, "device_id": device.json()["id"]}
        finally:
            vas.stop()
            camera.stop()


@pytest.fixture(scope="module")
def vas_stack(browser_bundles: dict[str, float],
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A namespace with a camera, ``vas up`` with that camera registered, and Chromium.

    Module-scoped: starting them costs seconds. Tests open their own pages and stop the
    viewers they start.
    """
    # With sound (AAC, a tone): the viewer page plays it (tests/browser/sound.py).
    with netns_stack(tmp_path_factory.mktemp("vas-netns"),
                     CameraProfile(audio=True, audio_codec="aac")) as stack:
        yield stack
