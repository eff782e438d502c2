"""Browser-test harness: a network namespace of its own, and Debian's Chromium inside it.

Chromium gathers no ICE candidates on loopback, so a WebRTC test needs a test host with a
real interface. ``TestNetns`` makes one: a network namespace (``vas-t-<random>``) with
``lo`` up and one end of a veth pair carrying ``10.253.X.1/24``. The other end stays in the
root namespace with ``10.253.X.2/24``, so the test process can reach servers inside; nothing
in the namespace has a route anywhere else. Servers, the RTSP camera and the browser all run
inside (``ip netns exec``), and everything is removed on exit.

``Browser`` runs ``driver.mjs`` (playwright-core driving ``/usr/bin/chromium``; never a
downloaded browser) inside the namespace and talks to it in JSON lines. ``ensure_node_modules``
installs the npm packages and bundles ``src/*.js`` into ``dist/`` with esbuild.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import os
import queue
import random
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any

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
# The page the clients run in: served by the driver itself (page.route) under any origin,
# e.g. the VAS server's, so that the guide's relative fetches reach VAS.
TEST_PAGE_PATH = "/__vas_browser_test__/"
TEST_PAGE_HTML = """<!doctype html>
<html><head><meta charset="utf-8"><title>VAS browser test</title></head>
<body><div id="videos"></div>
<script src="guide_client.js"></script>
<script src="whep_client.js"></script>
</body></html>
"""
BUNDLES = ("guide_client.js", "whep_client.js")


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
    """Install the npm packages if missing and (re)build ``dist/``; return the timings (s)."""
    timings: dict[str, float] = {}
    if not (BROWSER_DIR / "node_modules" / ".package-lock.json").exists():
        has_lock = (BROWSER_DIR / "package-lock.json").exists()
        command = ["npm", "ci" if has_lock else "install", "--no-audit", "--no-fund"]
        timings["npm_install"] = _run_logged(command, BROWSER_DIR, timeout)
    # esbuild takes a fraction of a second: always rebuild, so dist/ never lags src/.
    timings["bundle"] = _run_logged(["npm", "run", "--silent", "build"], BROWSER_DIR, 60.0)
    missing = [name for name in BUNDLES if not (DIST_DIR / name).is_file()]
    if missing:
        raise RuntimeError(f"bundles missing after the build: {missing}")
    return timings


def page_routes(origin: str) -> list[dict[str, str]]:
    """Routes for ``Browser.new_page`` that serve the test page and bundles under ``origin``."""
    base = origin.rstrip("/") + TEST_PAGE_PATH
    routes = [{"url": base + "index.html", "body": TEST_PAGE_HTML, "contentType": "text/html"}]
    routes += [
        {"url": base + name, "path": str(DIST_DIR / name), "contentType": "text/javascript"}
        for name in BUNDLES
    ]
    return routes


# --- processes ------------------------------------------------------------------------------


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid``, read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found: set[int] = set()
    stack = [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.add(child)
            stack.append(child)
    return found


def kill_pids(pids: Sequence[int] | set[int], grace: float = 3.0) -> None:
    """SIGTERM each PID, SIGKILL whatever is still there after ``grace`` seconds."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    remaining = set(pids)
    while remaining and time.monotonic() < deadline:
        remaining = {pid for pid in remaining if _alive(pid)}
        time.sleep(0.05)
    for pid in remaining:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def stop_process(process: subprocess.Popen[Any], timeout: float = 10.0) -> int:
    """SIGTERM ``process`` and its descendants, SIGKILL after ``timeout``; return its code."""
    tree = descendants(process.pid)
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            logger.warning("pid %d ignored SIGTERM; killing", process.pid)
            process.kill()
            process.wait()
    leftover = {pid for pid in tree if _alive(pid)}
    if leftover:
        kill_pids(leftover)
    return process.returncode


# --- network namespace ----------------------------------------------------------------------


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


class TestNetns:
    """A network namespace with ``lo`` up and a veth test address; removed on exit.

    ``address`` (10.253.X.1) lives inside; ``host_address`` (10.253.X.2) is the root
    namespace's end, so the test process can reach servers bound to ``address``.
    """

    __test__ = False

    def __init__(self) -> None:
        token = secrets.token_hex(4)
        self.name = f"vas-t-{token}"
        self.host_ifname = f"vt{token}h"  # IFNAMSIZ: at most 15 characters
        self.ns_ifname = f"vt{token}n"
        self.subnet = self._pick_subnet()
        self.address = str(self.subnet.network_address + 1)
        self.host_address = str(self.subnet.network_address + 2)
        self._next_port = random.randint(20000, 29000)
        self._created: list[str] = []

    @staticmethod
    def _pick_subnet() -> ipaddress.IPv4Network:
        """A random 10.253.X.0/24 that no address or route of the root namespace touches."""
        used = subprocess.run(
            ["ip", "-4", "-o", "route", "show", "table", "all"],
            capture_output=True, text=True, check=True,
        ).stdout
        for _ in range(64):
            subnet = ipaddress.IPv4Network(f"10.253.{random.randint(0, 255)}.0/24")
            if f"10.253.{subnet.network_address.packed[2]}." not in used:
                return subnet
        raise RuntimeError("no free 10.253.X.0/24 test subnet")

    def __enter__(self) -> TestNetns:
        started = time.monotonic()
        try:
            _ip("netns", "add", self.name)
            self._created.append("netns")
            _ip("-n", self.name, "link", "set", "lo", "up")
            _ip("link", "add", self.host_ifname, "type", "veth",
                "peer", "name", self.ns_ifname, "netns", self.name)
            self._created.append("veth")
            _ip("addr", "add", f"{self.host_address}/24", "dev", self.host_ifname)
            _ip("link", "set", self.host_ifname, "up")
            _ip("-n", self.name, "addr", "add", f"{self.address}/24", "dev", self.ns_ifname)
            _ip("-n", self.name, "link", "set", self.ns_ifname, "up")
        except BaseException:
            self.close()
            raise
        logger.info("netns %s (%s) up in %.2f s", self.name, self.address,
                    time.monotonic() - started)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def pids(self) -> list[int]:
        """PIDs of the processes inside the namespace."""
        if "netns" not in self._created:
            return []
        result = subprocess.run(["ip", "netns", "pids", self.name],
                                capture_output=True, text=True, check=False)
        return [int(p) for p in result.stdout.split()]

    def close(self) -> None:
        """Stop what still runs inside, then delete the veth pair and the namespace."""
        leftover = self.pids()
        if leftover:
            # Only our processes can be in a namespace we created; a test forgot them.
            logger.warning("netns %s: stopping leftover pids %s", self.name, leftover)
            kill_pids(leftover)
        if "veth" in self._created:
            # Deleting one end deletes both.
            subprocess.run(["ip", "link", "del", self.host_ifname],
                           capture_output=True, check=False)
        if "netns" in self._created:
            subprocess.run(["ip", "netns", "del", self.name], capture_output=True, check=False)
        self._created.clear()

    def command(self, cmd: Sequence[str]) -> list[str]:
        """``cmd`` prefixed to run inside the namespace (``ip netns exec`` execs, no fork)."""
        return ["ip", "netns", "exec", self.name, *cmd]

    def run(self, cmd: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess[Any]:
        """``subprocess.run`` inside the namespace."""
        return subprocess.run(self.command(cmd), **kwargs)

    def popen(self, cmd: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
        """``subprocess.Popen`` inside the namespace; its PID is the command's own."""
        return subprocess.Popen(self.command(cmd), **kwargs)

    def free_port(self) -> int:
        """A TCP/UDP port nothing in the namespace uses (only our processes live there)."""
        self._next_port += 1
        return self._next_port

    def wait_listening(self, port: int, timeout: float = 15.0,
                       process: subprocess.Popen[Any] | None = None) -> None:
        """Wait until a TCP connect to ``address:port`` succeeds (from the root namespace)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                raise RuntimeError(f"pid {process.pid} exited with {process.returncode}")
            with contextlib.suppress(OSError), socket.create_connection(
                (self.address, port), timeout=0.5
            ):
                return
            time.sleep(0.1)
        raise TimeoutError(f"nothing listens on {self.address}:{port} after {timeout} s")


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
                leftover = {pid for pid in tree if _alive(pid)}
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


@contextlib.contextmanager
def netns_process(netns: TestNetns, cmd: Sequence[str], log_path: Path,
                  **kwargs: Any) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``cmd`` inside ``netns`` with its output in ``log_path``; stop it by PID on exit."""
    with open(log_path, "wb") as log:
        process = netns.popen(cmd, stdin=subprocess.DEVNULL, stdout=log,
                              stderr=subprocess.STDOUT, **kwargs)
        try:
            yield process
        finally:
            stop_process(process)
