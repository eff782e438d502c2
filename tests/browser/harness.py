"""Browser-test harness: Debian's Chromium inside a test network namespace, and the bundles.

``Browser`` runs ``driver.mjs`` (playwright-core driving ``/usr/bin/chromium``; never a
downloaded browser) inside a ``TestNetns`` (see ``netns.py``) and talks to it in JSON
lines: open pages, evaluate JS, take screenshots. ``ensure_node_modules`` installs the npm
packages and bundles ``src/*.js`` into ``dist/`` with esbuild.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from tests.browser.netns import TestNetns, netns_process
from tests.e2e.processes import alive, descendants, kill_pids, stop_process
from tests.locks import exclusive

__all__ = ["Browser", "BrowserError", "Page", "TestNetns", "descendants", "ensure_node_modules",
           "netns_process", "page_routes", "stop_process"]

logger = logging.getLogger(__name__)

BROWSER_DIR = Path(__file__).resolve().parent
DIST_DIR = BROWSER_DIR / "dist"
DRIVER_SCRIPT = BROWSER_DIR / "driver.mjs"
CHROMIUM = "/usr/bin/chromium"
# environment.md's flags; playwright adds --headless, --no-sandbox and a pipe for CDP.
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
)
# Chromium's default: host candidates are signalled as random "<uuid>.local" mDNS names.
# Tests that must see the real address pass this in ``extra_args``.
SHOW_HOST_ADDRESSES = "--disable-features=WebRtcHideLocalIpsWithMdns"
# The page the clients run in: served by the driver itself (page.route) under any origin,
# e.g. the VAS server's, so that the guide's relative fetches reach VAS. Use a secure
# origin (http://127.0.0.1:PORT inside the namespace): on http://10.253.X.1 there is no
# navigator.userAgentData, and mediasoup-client's User-Agent regex does not match
# "HeadlessChrome/156", so `new Device()` throws "device not supported".
TEST_PAGE_PATH = "/__vas_browser_test__/"
TEST_PAGE_HTML = """<!doctype html>
<html><head><meta charset="utf-8"><title>VAS browser test</title></head>
<body><div id="videos"></div>
<script src="guide_client.js"></script>
<script src="whep_client.js"></script>
</body></html>
"""
BUNDLES = ("guide_client.js", "whep_client.js", "first_frame.js")


# --- npm packages and bundles ---------------------------------------------------------------


def _run_logged(command: Sequence[str], cwd: Path, timeout: float) -> float:
    started = time.monotonic()
    result = subprocess.run(
        list(command), cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )
    elapsed = time.monotonic() - started
    if result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
    logger.info("%s took %.1f s", " ".join(command), elapsed)
    return elapsed


def ensure_node_modules(timeout: float = 300.0) -> dict[str, float]:
    """Install the npm packages if missing or older than the lock file, (re)build ``dist/``
    when a source is newer than a bundle. One process at a time (parallel test workers).

    Returns the timings in seconds (``npm_install`` and ``bundle`` when they ran).
    """
    timings: dict[str, float] = {}
    with exclusive(BROWSER_DIR / ".setup.lock"):
        installed = BROWSER_DIR / "node_modules" / ".package-lock.json"  # written by npm
        lock = BROWSER_DIR / "package-lock.json"
        if not installed.exists() or (
            lock.exists() and lock.stat().st_mtime > installed.stat().st_mtime
        ):
            command = ["npm", "ci" if lock.exists() else "install", "--no-audit", "--no-fund"]
            timings["npm_install"] = _run_logged(command, BROWSER_DIR, timeout)
        if _bundles_stale():
            timings["bundle"] = _run_logged(["npm", "run", "--silent", "build"], BROWSER_DIR, 60.0)
    missing = [name for name in BUNDLES if not (DIST_DIR / name).is_file()]
    if missing:
        raise RuntimeError(f"bundles missing after the build: {missing}")
    return timings


def _bundles_stale() -> bool:
    """A bundle is missing, or a source or the package files are newer than the oldest."""
    bundles = [DIST_DIR / name for name in BUNDLES]
    if not all(bundle.is_file() for bundle in bundles):
        return True
    built = min(bundle.stat().st_mtime for bundle in bundles)
    sources = [*(BROWSER_DIR / "src").rglob("*"), BROWSER_DIR / "package.json",
               BROWSER_DIR / "node_modules" / ".package-lock.json"]
    return any(source.is_file() and source.stat().st_mtime > built for source in sources)


def page_routes(origin: str) -> list[dict[str, str]]:
    """Routes for ``Browser.new_page`` that serve the test page and bundles under ``origin``."""
    base = origin.rstrip("/") + TEST_PAGE_PATH
    routes = [{"url": base + "index.html", "body": TEST_PAGE_HTML, "contentType": "text/html"}]
    routes += [
        {"url": base + name, "path": str(DIST_DIR / name), "contentType": "text/javascript"}
        for name in BUNDLES
    ]
    return routes


# --- browser --------------------------------------------------------------------------------


class BrowserError(RuntimeError):
    """The driver reported an error, exited, or did not answer in time."""


class Browser:
    """Debian's Chromium inside ``netns``, driven by ``driver.mjs`` over JSON lines."""

    def __init__(self, netns: TestNetns, extra_args: Sequence[str] = (),
                 launch_timeout: float = 30.0) -> None:
        self.netns = netns
        self.args = [*CHROMIUM_ARGS, *extra_args]
        self.launch_timeout = launch_timeout
        self.info: dict[str, Any] = {}
        self.startup_seconds = 0.0
        self._process: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None
        self._user_data_dir: str | None = None
        self._lines: queue.Queue[bytes | None] = queue.Queue()
        self._next_id = 0
        self._lock = threading.Lock()

    def start(self) -> Browser:
        """Launch the driver and Chromium; return once the browser is ready."""
        started = time.monotonic()
        self._user_data_dir = tempfile.mkdtemp(prefix="vas-chromium-")
        self._stderr = tempfile.TemporaryFile(prefix="vas-driver-")  # noqa: SIM115 (closed in close)
        options = {"userDataDir": self._user_data_dir, "executablePath": CHROMIUM,
                   "args": self.args, "launchTimeoutMs": int(self.launch_timeout * 1000)}
        self._process = self.netns.popen(
            ["node", str(DRIVER_SCRIPT), json.dumps(options)], cwd=BROWSER_DIR,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
        )
        threading.Thread(target=self._read, daemon=True, name="browser-driver").start()
        try:
            ready = self._receive(self.launch_timeout + 10)
        except BaseException:
            self.close()
            raise
        if ready.get("event") != "ready":
            self.close()
            raise BrowserError(f"browser did not start: {ready}")
        self.info = ready
        self.startup_seconds = time.monotonic() - started
        logger.info("chromium %s ready in %.2f s (netns %s)", ready.get("version"),
                    self.startup_seconds, self.netns.name)
        return self

    def _read(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        for line in self._process.stdout:
            self._lines.put(line)
        self._lines.put(None)

    @property
    def pid(self) -> int | None:
        """PID of the driver process (Chromium runs below it)."""
        return self._process.pid if self._process is not None else None

    @property
    def stderr(self) -> str:
        """What the driver (and Chromium) logged so far."""
        if self._stderr is None:
            return ""
        fileno = self._stderr.fileno()
        return os.pread(fileno, os.fstat(fileno).st_size, 0).decode(errors="replace")

    def _receive(self, timeout: float) -> dict[str, Any]:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise BrowserError(f"no answer from the driver in {timeout} s; stderr:\n"
                               f"{self.stderr[-4000:]}") from None
        if line is None:
            self._lines.put(None)  # keep reporting the exit
            raise BrowserError(f"driver exited; stderr:\n{self.stderr[-4000:]}")
        message: dict[str, Any] = json.loads(line)
        return message

    def request(self, cmd: str, timeout: float = 60.0, **params: Any) -> Any:
        """Send one command and return its result; raise BrowserError on failure."""
        with self._lock:
            if self._process is None or self._process.stdin is None:
                raise BrowserError("browser not running")
            self._next_id += 1
            request_id = self._next_id
            payload = json.dumps({"id": request_id, "cmd": cmd, **params}) + "\n"
            try:
                self._process.stdin.write(payload.encode())
                self._process.stdin.flush()
            except BrokenPipeError:
                raise BrowserError(f"driver gone; stderr:\n{self.stderr[-4000:]}") from None
            answer = self._receive(timeout)
            while answer.get("id") != request_id:  # a stale answer to a timed-out request
                answer = self._receive(timeout)
        if not answer.get("ok"):
            raise BrowserError(f"{cmd} failed: {answer.get('error')}")
        return answer.get("result")

    def new_page(self, routes: Sequence[dict[str, str]] = ()) -> Page:
        """A new tab; ``routes`` are URLs the driver answers itself (see page_routes)."""
        return Page(self, self.request("newPage", routes=list(routes)))

    def open_test_page(self, origin: str) -> Page:
        """A tab on ``origin`` + TEST_PAGE_PATH with both client bundles loaded."""
        page = self.new_page(page_routes(origin))
        page.goto(origin.rstrip("/") + TEST_PAGE_PATH + "index.html")
        page.evaluate("() => Boolean(window.vasGuide && window.vasWhep)")
        return page

    def close(self) -> None:
        """Close the browser, stop the driver and anything it left, remove the profile."""
        process, self._process = self._process, None
        if process is not None:
            if process.poll() is None and process.stdin is not None:
                tree = descendants(process.pid)
                with contextlib.suppress(OSError):
                    process.stdin.write(b'{"id": 0, "cmd": "close"}\n')
                    process.stdin.flush()
                    process.stdin.close()
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    stop_process(process)
                leftover = {pid for pid in tree if alive(pid)}
                if leftover:
                    logger.warning("chromium pids %s outlived the driver; killing", leftover)
                    kill_pids(leftover)
            if process.stdout is not None:
                process.stdout.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        if self._user_data_dir is not None:
            shutil.rmtree(self._user_data_dir, ignore_errors=True)
            self._user_data_dir = None

    def __enter__(self) -> Browser:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class Page:
    """One browser tab."""

    def __init__(self, browser: Browser, page_id: int) -> None:
        self.browser = browser
        self.id = page_id

    def goto(self, url: str, timeout: float = 15.0) -> int | None:
        """Navigate and wait for ``load``; return the HTTP status (None if routed)."""
        status: int | None = self.browser.request(
            "goto", timeout=timeout + 5, page=self.id, url=url, timeoutMs=int(timeout * 1000)
        )
        return status

    def evaluate(self, source: str, arg: Any = None, timeout: float = 30.0) -> Any:
        """Call the JS function ``source`` (e.g. ``"(a) => a + 1"``) in the page with ``arg``."""
        return self.browser.request("evaluate", timeout=timeout + 5, page=self.id,
                                    source=source, arg=arg, timeoutMs=int(timeout * 1000))

    def screenshot(self, path: Path | str) -> Path:
        """Save a PNG of the page to ``path``."""
        self.browser.request("screenshot", page=self.id, path=str(path))
        return Path(path)

    def logs(self) -> dict[str, list[str]]:
        """The page's console messages and uncaught errors so far."""
        result: dict[str, list[str]] = self.browser.request("logs", page=self.id)
        return result

    def close(self) -> None:
        """Close the tab."""
        self.browser.request("closePage", page=self.id)
