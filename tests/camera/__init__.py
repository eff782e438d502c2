"""RTSP test cameras for the test suite.

``TestCamera`` runs ``server.py`` (GStreamer's RTSP server, on Debian's ``/usr/bin/python3``)
as a subprocess. ``SilentRtspServer`` accepts connections and never answers, and
``unused_port()`` gives a port nobody listens on: the two ways a camera fails to answer.
Install the Debian packages first with ``scripts/install-test-deps.sh``.
"""

from __future__ import annotations

import atexit
import binascii
import contextlib
import dataclasses
import logging
import os
import selectors
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from tests.e2e.processes import stop_process

logger = logging.getLogger(__name__)

SERVER_SCRIPT = Path(__file__).with_name("server.py")
# The GStreamer GObject bindings are Debian packages, importable only from Debian's Python.
SYSTEM_PYTHON = "/usr/bin/python3"

# Timestamp strip written by server.py with --overlay-time; these must equal its constants.
STAMP_CELLS = 64
STAMP_BAND_HEIGHT = 16

# The photo of a whole standing person for the detection scenes: OpenCV's sample
# basketball1.png (the HOG people-detector sample's own test picture), from Debian's
# opencv-doc package (scripts/install-test-deps.sh installs it). The crop (left, top, right,
# bottom, in its pixels) holds the left player from head to shoes, with a little margin; the
# default HOG detector finds him (docs/detection.md, tests/media/detection/test_hog.py).
PERSON_IMAGE = Path("/usr/share/doc/opencv-doc/examples/data/basketball1.png")
PERSON_CROP = (10, 55, 200, 480)
# Where the person stands inside the crop (left, top, right, bottom): feet at the bottom.
PERSON_IN_CROP = (15, 25, 150, 420)


class CameraStartError(RuntimeError):
    """The camera process exited or stayed silent before printing its READY line."""


@dataclasses.dataclass(frozen=True)
class CameraProfile:
    """What the test camera sends; ``dataclasses.replace`` makes variants."""

    width: int = 640
    height: int = 360
    fps: int = 15
    gop: int = 30
    bitrate_kbps: int = 800
    encoder: str = "x264"  # or "openh264"
    h264_profile: str = "baseline"  # or "main", "high" (x264 only)
    overlay_time: bool = False
    no_video: bool = False
    user: str | None = None
    password: str | None = None
    auth_method: str = "digest"  # or "basic"
    pattern: str = "ball"
    horizontal_speed: int = 0  # scroll the pattern (pixels per frame): motion for any pattern
    audio: bool = False  # an audio track next to the video (audio_codec, a tone)
    # "h264" (encoder/h264_profile apply), "h265" (x265enc) or "mjpeg" (jpegenc, RTP/JPEG:
    # width and height multiples of 8).
    codec: str = "h264"
    audio_codec: str = "pcmu"  # or "pcma" (G.711 A-law, 8 kHz), "aac" (MPEG-4 AAC, 16 kHz)
    tone_hz: int = 440  # the audio track's sine frequency
    mount: str = "/cam"
    # Detection scenes (server.py's module docstring): "pattern" (the pattern alone),
    # "motion" (a light block on the pattern) or "person" (PERSON_IMAGE on the pattern).
    # The object stays inside object_area (normalized x0, y0, x1, y1) and moves only while
    # motion is on (TestCamera.set_motion, or moving=True from the start). Give these scenes
    # a still pattern: "smpte100" under the block, "gradient" under the person.
    scene: str = "pattern"
    object_area: tuple[float, float, float, float] = (0.0, 0.0, 1.0, 1.0)
    moving: bool = False
    object_grey: int = 0xE6  # the motion block's grey level: its contrast to the pattern

    def server_args(self) -> list[str]:
        """Command-line options for server.py (without --port)."""
        args = [
            f"--mount={self.mount}",
            f"--width={self.width}",
            f"--height={self.height}",
            f"--fps={self.fps}",
            f"--gop={self.gop}",
            f"--bitrate={self.bitrate_kbps}",
            f"--encoder={self.encoder}",
            f"--h264-profile={self.h264_profile}",
            f"--pattern={self.pattern}",
            f"--horizontal-speed={self.horizontal_speed}",
            f"--codec={self.codec}",
            f"--audio-codec={self.audio_codec}",
            f"--tone-hz={self.tone_hz}",
        ]
        if self.scene != "pattern":
            args.append(f"--scene={self.scene}")
            args.append("--object-area=" + ",".join(str(v) for v in self.object_area))
            if self.moving:
                args.append("--moving")
            args.append(f"--object-grey={self.object_grey}")
        if self.scene == "person":
            args.append(f"--person-image={PERSON_IMAGE}")
            args.append("--person-crop=" + ",".join(str(v) for v in PERSON_CROP))
        if self.overlay_time:
            args.append("--overlay-time")
        if self.no_video:
            args.append("--no-video")
        if self.audio:
            args.append("--audio")
        if self.user is not None:
            args += [f"--user={self.user}", f"--password={self.password or ''}"]
            args.append(f"--auth-method={self.auth_method}")
        return args


def unused_port() -> int:
    """Return a 127.0.0.1 port on which nothing listens (connecting is refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class TestCamera:
    """A real RTSP camera in a subprocess; keeps its port across restarts."""

    __test__ = False  # not a pytest test class despite the name

    def __init__(self, profile: CameraProfile | None = None, port: int | None = None) -> None:
        self.profile = profile or CameraProfile()
        self.port = port if port is not None else unused_port()
        self._process: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None

    @property
    def url(self) -> str:
        """The camera's RTSP URL, with ``user:password@`` when the profile has them."""
        credentials = ""
        if self.profile.user is not None:
            credentials = f"{self.profile.user}:{self.profile.password or ''}@"
        return f"rtsp://{credentials}127.0.0.1:{self.port}{self.profile.mount}"

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        """PID of the server process, if started."""
        return self._process.pid if self._process is not None else None

    def start(self, timeout: float = 30.0) -> None:
        """Launch the server and return once it listens; raise CameraStartError if not."""
        if self.running:
            raise RuntimeError("camera already running")
        # A file, not a pipe, for stderr: nobody reads it while the camera runs, and a full
        # pipe would block the server's logging and with it the stream.
        self._stderr = tempfile.TemporaryFile(prefix="test-camera-")  # noqa: SIM115 (closed in stop)
        command = [SYSTEM_PYTHON, str(SERVER_SCRIPT), f"--port={self.port}"]
        command += self.profile.server_args()
        # A scene camera takes commands on stdin (set_motion); the others get nothing.
        stdin = subprocess.PIPE if self.profile.scene != "pattern" else subprocess.DEVNULL
        self._process = subprocess.Popen(
            command, stdin=stdin, stdout=subprocess.PIPE, stderr=self._stderr
        )
        _running.add(self)
        started = time.monotonic()
        try:
            line = self._read_ready_line(timeout)
        except CameraStartError:
            self._stop(timeout=5.0, log_exit=False)  # the error already carries stderr
            raise
        logger.info(
            "camera %s ready in %.2f s (pid %d)", line, time.monotonic() - started, self.pid
        )

    def set_motion(self, moving: bool, timeout: float = 5.0) -> None:
        """Start or stop the scene's object (scenes "motion" and "person"); returns once the
        camera confirms, so frames captured from then on show the new state."""
        if self._process is None or self._process.stdin is None:
            raise RuntimeError("camera not running, or its scene takes no commands")
        command = f"motion {'on' if moving else 'off'}"
        self._process.stdin.write(f"{command}\n".encode())
        self._process.stdin.flush()
        answer = self._read_line(timeout)
        if answer != f"OK {command}":
            raise RuntimeError(f"camera answered {answer!r} to {command!r}")

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM the server, SIGKILL it after ``timeout`` seconds, and reap it."""
        self._stop(timeout, log_exit=True)

    def _stop(self, timeout: float, log_exit: bool) -> None:
        process, self._process = self._process, None
        _running.discard(self)
        if process is not None:
            stop_process(process, timeout)
            for pipe in (process.stdin, process.stdout):
                if pipe is not None:
                    with contextlib.suppress(OSError):
                        pipe.close()
            if log_exit and process.returncode not in (0, -signal.SIGKILL):
                logger.warning("camera exited with %s: %s", process.returncode, self.stderr)
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def restart(self, timeout: float = 10.0) -> None:
        """Stop and start again on the same port."""
        self.stop()
        self.start(timeout)

    @property
    def stderr(self) -> str:
        """What the server has logged so far (for failure messages)."""
        if self._stderr is None:
            return ""
        # pread, not seek + read: the child shares this file's offset and appends through it.
        fileno = self._stderr.fileno()
        return os.pread(fileno, os.fstat(fileno).st_size, 0).decode(errors="replace")

    def _read_ready_line(self, timeout: float) -> str:
        line = self._read_line(timeout)
        if not line.startswith("READY "):
            raise CameraStartError(f"unexpected camera output {line!r}; stderr:\n{self.stderr}")
        return line.removeprefix("READY ")

    def _read_line(self, timeout: float) -> str:
        """The next line the server prints (it prints one per event, then waits)."""
        assert self._process is not None and self._process.stdout is not None
        stdout = self._process.stdout
        deadline = time.monotonic() + timeout
        buffered = b""
        with selectors.DefaultSelector() as selector:
            selector.register(stdout, selectors.EVENT_READ)
            while b"\n" not in buffered:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not selector.select(remaining):
                    raise CameraStartError(
                        f"camera not ready after {timeout} s; stderr:\n{self.stderr}"
                    )
                # os.read, not stdout.readline: a partial line must not block past the deadline.
                chunk = os.read(stdout.fileno(), 4096)
                if not chunk:
                    self._process.wait()
                    raise CameraStartError(
                        f"camera exited with {self._process.returncode}; stderr:\n{self.stderr}"
                    )
                buffered += chunk
        return buffered.split(b"\n", 1)[0].decode()

    def __enter__(self) -> TestCamera:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


# Cameras still running at interpreter exit, e.g. after a test forgot to stop one: without
# this they would outlive pytest and hold their ports.
_running: set[TestCamera] = set()


@atexit.register
def _stop_leftover_cameras() -> None:
    for camera in list(_running):
        camera.stop()


class SilentRtspServer:
    """Accepts TCP connections on 127.0.0.1 and never answers (a hung camera)."""

    def __init__(self, mount: str = "/cam") -> None:
        self._mount = mount
        self._listener: socket.socket | None = None
        self._connections: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def url(self) -> str:
        """An RTSP URL pointing at this server."""
        return f"rtsp://127.0.0.1:{self.port}{self._mount}"

    @property
    def connection_count(self) -> int:
        """Connections accepted so far."""
        return len(self._connections)

    def start(self) -> None:
        """Listen on a free port and accept connections in a background thread."""
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        # A short timeout lets the accept loop notice stop() without a wakeup pipe.
        listener.settimeout(0.1)
        self._listener = listener
        self.port = int(listener.getsockname()[1])
        self._stop.clear()
        self._thread = threading.Thread(target=self._accept_loop, name="silent-rtsp", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop accepting and close every connection."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        for connection in self._connections:
            connection.close()
        self._connections.clear()
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stop.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            # Keep the socket open and unread: closing it would look like a reset, not a hang.
            self._connections.append(connection)

    def __enter__(self) -> SilentRtspServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


class LateRtspProxy:
    """A camera that answers late: accepts TCP on 127.0.0.1, holds each connection silent for
    ``delay`` seconds, then relays it to ``upstream_port`` (a real camera). RTSP over TCP only
    (interleaved RTP crosses the relay; UDP media would not)."""

    def __init__(self, upstream_port: int, delay: float, mount: str = "/cam") -> None:
        self.upstream_port = upstream_port
        self.delay = delay
        self._mount = mount
        self._listener: socket.socket | None = None
        self._sockets: list[socket.socket] = []
        self._stop = threading.Event()
        self.port = 0

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}{self._mount}"

    def start(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        listener.settimeout(0.1)
        self._listener = listener
        self.port = int(listener.getsockname()[1])
        threading.Thread(target=self._accept_loop, name="late-rtsp", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        for sock in [*self._sockets, *([self._listener] if self._listener else [])]:
            with contextlib.suppress(OSError):
                sock.close()
        self._sockets.clear()

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._sockets.append(client)
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        # Silent for `delay`: what the client sent meanwhile waits in the socket's buffer.
        if self._stop.wait(self.delay):
            return
        try:
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=5)
        except OSError:
            client.close()
            return
        upstream.settimeout(None)
        self._sockets.append(upstream)
        threading.Thread(target=_pipe, args=(upstream, client), daemon=True).start()
        _pipe(client, upstream)

    def __enter__(self) -> LateRtspProxy:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


def _pipe(source: socket.socket, target: socket.socket) -> None:
    """Copy bytes until either side closes, then close both."""
    try:
        while chunk := source.recv(65536):
            target.sendall(chunk)
    except OSError:
        pass
    finally:
        for sock in (source, target):
            with contextlib.suppress(OSError):
                sock.close()


def read_frame_timestamp(frame: Any) -> float | None:
    """Decode the Unix time (s) that ``--overlay-time`` wrote into a PyAV ``VideoFrame``.

    Works on frames at the camera's own resolution; returns None when the strip is absent
    or damaged (its CRC does not match).
    """
    if not (frame.format.name.startswith("yuv") or frame.format.name in ("nv12", "gray")):
        frame = frame.reformat(format="gray")
    cell_width = frame.width // STAMP_CELLS
    if cell_width < 2:
        return None
    plane = frame.planes[0]
    stride = plane.line_size
    data = memoryview(plane)
    # Average the middle of each cell: encoder ringing sits at the cell edges.
    margin = cell_width // 4
    rows = range(STAMP_BAND_HEIGHT // 4, STAMP_BAND_HEIGHT * 3 // 4)
    word = 0
    for cell in range(STAMP_CELLS):
        left = cell * cell_width + margin
        right = (cell + 1) * cell_width - margin
        total = sum(sum(data[y * stride + left : y * stride + right]) for y in rows)
        word = word << 1 | (total >= 128 * len(rows) * (right - left))
    payload = (word >> 16).to_bytes(6, "big")
    if binascii.crc_hqx(payload, 0) != word & 0xFFFF:
        return None
    return int.from_bytes(payload, "big") / 1000
