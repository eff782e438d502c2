#!/usr/bin/python3
"""RTSP test camera: one shared H.264 (or audio-only) mount served by GstRtspServer.

Run with Debian's ``/usr/bin/python3``: the GObject bindings for GStreamer and its RTSP
server are Debian packages (see ``scripts/install-test-deps.sh``), not in the project venv.
Binds 127.0.0.1 only. Prints ``READY rtsp://127.0.0.1:PORT/MOUNT`` on stdout once the
server listens, and exits with status 0 on SIGTERM or SIGINT.

Scenes for the detection tests (``--scene``): ``pattern`` (the default) is the
videotestsrc ``--pattern`` alone. ``motion`` puts a light block on a still ``--pattern``
background, and ``person`` a photo of a standing person (``--person-image``, cut to
``--person-crop``). The block or person sits inside ``--object-area`` (normalized
``x0,y0,x1,y1``) and stands still until told to move: the lines ``motion on`` and
``motion off`` on stdin start and stop it going back and forth across that area (each
answered with ``OK motion on|off`` on stdout once in force); ``--moving`` starts it moving.

With ``--overlay-time`` every frame carries the wall-clock time twice: as text
(``HH:MM:SS.mmm`` UTC) for humans, and as a machine-readable strip along the top edge
(see ``stamp_cells``) that ``tests.camera.read_frame_timestamp`` decodes.
"""

from __future__ import annotations

import argparse
import binascii
import logging
import os
import signal
import sys
import time
from collections.abc import Callable

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
gi.require_version("GstVideo", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer, GstVideo  # noqa: E402

logger = logging.getLogger("tests.camera.server")

# Timestamp strip geometry. tests/camera/__init__.py holds the decoder and repeats these
# numbers (it runs on another interpreter and cannot import this file): keep them equal.
STAMP_CELLS = 64  # 48 bits of Unix time in ms, then a 16-bit CRC-CCITT of those 6 bytes
STAMP_BAND_HEIGHT = 16  # rows; a multiple of 16 keeps the strip in whole macroblocks
STAMP_BLACK = 16
STAMP_WHITE = 235

AUTH_ROLE = "camera-user"


def stamp_cells(time_ms: int) -> list[bool]:
    """Return the 64 cell values (True = white) that encode ``time_ms``."""
    payload = (time_ms & (1 << 48) - 1).to_bytes(6, "big")
    word = int.from_bytes(payload, "big") << 16 | binascii.crc_hqx(payload, 0)
    return [bool(word >> (STAMP_CELLS - 1 - i) & 1) for i in range(STAMP_CELLS)]


def build_launch(args: argparse.Namespace) -> str:
    """Build the gst-launch description of the media served on the mount."""
    if args.no_video:
        return f"( {audio_branch(args, 'pay0')} )"
    src = f"videotestsrc name=src is-live=true pattern={args.pattern}"
    if args.horizontal_speed:
        src += f" horizontal-speed={args.horizontal_speed}"
    # I420 is fixed so the timestamp writer knows the plane layout.
    caps = f"video/x-raw,format=I420,width={args.width},height={args.height},framerate={args.fps}/1"
    parts = [src, caps]
    scene_branch = ""
    if args.scene != "pattern":
        # The background goes into the compositor's first pad, the moving object into its
        # second; the compositor's output is what the rest of the pipeline encodes.
        parts = ["compositor name=mix background=black", caps]
        scene_branch = f" {src} ! {caps} ! mix.sink_0 {object_branch(args)} ! mix.sink_1"
    if args.overlay_time:
        # clockoverlay formats with strftime and has no sub-second field, so the text is
        # a textoverlay whose text the source pad probe sets per frame (with milliseconds).
        parts.append(
            'textoverlay name=clock font-desc="Sans Bold 28" halignment=left '
            "valignment=bottom shaded-background=true"
        )
    parts += video_encoder(args)
    launch = " ! ".join(parts) + scene_branch
    if args.audio:
        launch += " " + audio_branch(args, "pay1")
    return f"( {launch} )"


def video_encoder(args: argparse.Namespace) -> list[str]:
    """Encoder, caps and RTP payloader of the video (``--codec``)."""
    if args.codec == "h265":
        # tune=zerolatency: no B-frames; scenecut off for a camera's fixed GOP. config-interval
        # -1 sends VPS/SPS/PPS with every IDR, as cameras do.
        return [
            f"x265enc tune=zerolatency speed-preset=ultrafast key-int-max={args.gop} "
            f"bitrate={args.bitrate} option-string=scenecut=0",
            "video/x-h265,profile=main",
            "rtph265pay name=pay0 pt=96 config-interval=-1",
        ]
    if args.codec == "mjpeg":
        # RTP/JPEG (RFC 2435): every frame a JPEG; the static payload type 26.
        return ["jpegenc quality=75", "rtpjpegpay name=pay0 pt=26"]
    if args.encoder == "x264":
        # scenecut=0: keyframes only every --gop frames, like a camera's fixed GOP.
        # ultrafast turns CABAC and 8x8 transforms off: its output is constrained baseline
        # whatever the caps say, so Main and High need a preset that keeps them.
        preset = "ultrafast" if args.h264_profile == "baseline" else "veryfast"
        encoder = (
            f"x264enc tune=zerolatency speed-preset={preset} bframes=0 "
            f"key-int-max={args.gop} bitrate={args.bitrate} option-string=scenecut=0"
        )
    else:
        encoder = (
            f"openh264enc gop-size={args.gop} bitrate={args.bitrate * 1000} "
            "rate-control=bitrate complexity=low usage-type=camera"
        )
    return [encoder, f"video/x-h264,profile={args.h264_profile}",
            "rtph264pay name=pay0 pt=96 config-interval=1"]


def object_size(args: argparse.Namespace) -> tuple[int, int]:
    """(width, height) in pixels of the scene's moving object."""
    x0, y0, x1, y1 = args.object_area
    area_width, area_height = (x1 - x0) * args.width, (y1 - y0) * args.height
    if args.scene == "motion":
        # A block a fifth of the area wide and half of it high.
        return even(area_width / 5), even(area_height / 2)
    # The person fills most of the area's height, with the photo's aspect ratio.
    left, top, right, bottom = args.person_crop
    height = even(min(area_height * 0.9, args.height * 0.9))
    return even(height * (right - left) / (bottom - top)), height


def even(value: float) -> int:
    """``value`` rounded down to an even number of pixels (I420 needs even sizes)."""
    return max(2, int(value) // 2 * 2)


def object_branch(args: argparse.Namespace) -> str:
    """The moving object's source: a light block or the person photo, frozen into video."""
    width, height = object_size(args)
    caps = f"video/x-raw,format=I420,width={width},height={height},framerate={args.fps}/1"
    if args.scene == "motion":
        return (f"videotestsrc is-live=true pattern=solid-color "
                f"foreground-color=0xff{args.object_grey:02x}{args.object_grey:02x}{args.object_grey:02x} ! {caps}")
    left, top, right, bottom = args.person_crop
    return (
        f'filesrc location="{args.person_image}" ! pngdec ! videoconvert ! '
        f"videocrop left={left} top={top} right=-1 bottom=-1 ! "
        f"video/x-raw,width={right - left},height={bottom - top} ! videoscale ! "
        f"video/x-raw,width={width},height={height} ! imagefreeze is-live=true ! "
        f"videoconvert ! {caps}"
    )


class SceneMotion:
    """Moves the scene's object back and forth across its area while motion is on.

    The position advances with the wall clock only while moving, so "off" freezes the
    object where it is (a still scene) and "on" carries on from there.
    """

    PERIOD = 4.0  # seconds for one trip there and back

    def __init__(self, args: argparse.Namespace, moving: bool) -> None:
        self._args = args
        self.moving = moving
        self._phase = 0.0  # 0..1 along one trip there and back
        self._last = time.monotonic()
        self._pads: list[Gst.Pad] = []
        self.width, self.height = object_size(args)

    def attach(self, pad: Gst.Pad) -> None:
        """Drive this compositor pad (one per prepared media)."""
        self._pads.append(pad)
        self._place(pad)

    def set_moving(self, moving: bool) -> None:
        """Start or stop the object, from where it is."""
        self.tick()
        self.moving = moving

    def tick(self) -> bool:
        """Advance the position (GLib timeout callback; keeps running)."""
        now = time.monotonic()
        if self.moving:
            self._phase = (self._phase + (now - self._last) / self.PERIOD) % 1.0
        self._last = now
        for pad in self._pads:
            self._place(pad)
        return GLib.SOURCE_CONTINUE

    def _place(self, pad: Gst.Pad) -> None:
        x0, y0, x1, y1 = self._args.object_area
        left, right = x0 * self._args.width, x1 * self._args.width - self.width
        top = y0 * self._args.height
        bottom = y1 * self._args.height - self.height
        travel = 1 - abs(2 * self._phase - 1)  # 0 -> 1 -> 0 over one trip
        pad.set_property("xpos", int(left + (right - left) * travel))
        pad.set_property("ypos", int((top + bottom) / 2))


def audio_branch(args: argparse.Namespace, pay_name: str) -> str:
    """A live tone of ``--tone-hz`` in ``--audio-codec``: G.711 (mu-law, A-law) or AAC."""
    rate = 16000 if args.audio_codec == "aac" else 8000
    source = (
        f"audiotestsrc is-live=true wave=sine freq={args.tone_hz} volume=0.2 ! audioconvert ! "
        f"audioresample ! audio/x-raw,rate={rate},channels=1"
    )
    if args.audio_codec == "aac":
        encoder = f"voaacenc ! aacparse ! rtpmp4gpay name={pay_name} pt=97"
    elif args.audio_codec == "pcma":
        encoder = f"alawenc ! rtppcmapay name={pay_name} pt=8"
    else:
        encoder = f"mulawenc ! rtppcmupay name={pay_name} pt=0"
    return f"{source} ! {encoder}"


class TimeStamper:
    """Pad probe that burns the wall-clock time into each raw frame before encoding."""

    def __init__(self, overlay: Gst.Element | None) -> None:
        self._overlay = overlay
        self._cell_width = 0
        # (offset, stride, rows) of the Y, U and V planes: the strip's rows in each.
        self._planes: list[tuple[int, int, int]] = []
        self._layout_read = False
        self.stopped = False

    def __call__(self, pad: Gst.Pad, info: Gst.PadProbeInfo) -> Gst.PadProbeReturn:
        if self.stopped:
            return Gst.PadProbeReturn.OK
        # The source has just waited for the clock, so "now" is the frame's capture time.
        now = time.time()
        if not self._layout_read:
            self._read_layout(pad)
        if self._planes:
            self._write_strip(info.get_buffer(), int(now * 1000))
        if self._overlay is not None:
            millis = int(now * 1000) % 1000
            text = time.strftime("%H:%M:%S", time.gmtime(now)) + f".{millis:03d} UTC"
            self._overlay.set_property("text", text)
        return Gst.PadProbeReturn.OK

    def _read_layout(self, pad: Gst.Pad) -> None:
        self._layout_read = True
        video_info = GstVideo.VideoInfo.new_from_caps(pad.get_current_caps())
        self._cell_width = video_info.width // STAMP_CELLS
        if self._cell_width < 2 or video_info.height < 2 * STAMP_BAND_HEIGHT:
            logger.warning("frame too small for the timestamp strip; text only")
            return
        self._planes = [
            (video_info.offset[0], video_info.stride[0], STAMP_BAND_HEIGHT),
            (video_info.offset[1], video_info.stride[1], STAMP_BAND_HEIGHT // 2),
            (video_info.offset[2], video_info.stride[2], STAMP_BAND_HEIGHT // 2),
        ]

    def _write_strip(self, buffer: Gst.Buffer, time_ms: int) -> None:
        luma = b"".join(
            bytes([STAMP_WHITE if bit else STAMP_BLACK]) * self._cell_width
            for bit in stamp_cells(time_ms)
        )
        # Neutral chroma under the strip, so coloured patterns do not tint it.
        chroma = b"\x80" * (len(luma) // 2)
        # The buffer is not "writable" from Python (the bindings hold extra references), but
        # its memory is only ours until it is pushed, so map the memory itself for writing.
        if buffer.n_memory() != 1:
            return  # the plane offsets would span memories; videotestsrc never does this
        memory = buffer.peek_memory(0)
        with memory.map(Gst.MapFlags.READ | Gst.MapFlags.WRITE) as mapped:
            data = mapped.data
            patterns = (luma, chroma, chroma)  # one row pattern per plane: Y, U, V
            for (offset, stride, rows), row in zip(self._planes, patterns, strict=True):
                for y in range(rows):
                    start = offset + y * stride
                    data[start : start + len(row)] = row


class CameraServer:
    """The RTSP server, its single mount and the media it configures."""

    def __init__(self, args: argparse.Namespace) -> None:
        self._args = args
        self._stampers: list[TimeStamper] = []
        self.scene = SceneMotion(args, args.moving) if args.scene != "pattern" else None
        self.server = GstRtspServer.RTSPServer()
        self.server.set_address("127.0.0.1")
        self.server.set_service(str(args.port))

        factory = GstRtspServer.RTSPMediaFactory()
        factory.set_launch(build_launch(args))
        # One pipeline for every client, as a camera has one sensor.
        factory.set_shared(True)
        factory.connect("media-configure", self._on_media_configure)
        if args.user is not None:
            self._configure_auth(factory, args.user, args.password or "", args.auth_method)
        self.server.get_mount_points().add_factory(args.mount, factory)
        self.server.connect("client-connected", self._on_client_connected)

    def attach(self) -> int:
        """Start listening; return the bound port."""
        if self.server.attach(None) == 0:
            raise OSError(f"cannot listen on 127.0.0.1:{self._args.port}")
        return int(self.server.get_bound_port())

    def shutdown(self) -> None:
        """Stop touching frames and drop every client before the interpreter exits."""
        for stamper in self._stampers:
            stamper.stopped = True
        self.server.client_filter(lambda _server, _client: GstRtspServer.RTSPFilterResult.REMOVE)

    def _configure_auth(
        self, factory: GstRtspServer.RTSPMediaFactory, user: str, password: str, method: str
    ) -> None:
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string("media.factory.role", AUTH_ROLE)
        if method == "digest":
            auth.add_digest(user, password, token)
            auth.set_supported_methods(GstRtsp.RTSPAuthMethod.DIGEST)
        else:
            auth.add_basic(GstRtspServer.RTSPAuth.make_basic(user, password), token)
            auth.set_supported_methods(GstRtsp.RTSPAuthMethod.BASIC)
        # No default token: anonymous requests get 401, as from a camera with auth on.
        self.server.set_auth(auth)
        factory.add_role_from_structure(
            Gst.Structure.new_from_string(
                f"{AUTH_ROLE}, media.factory.access=(boolean)true, "
                "media.factory.construct=(boolean)true"
            )
        )

    def _on_media_configure(
        self, _factory: GstRtspServer.RTSPMediaFactory, media: GstRtspServer.RTSPMedia
    ) -> None:
        logger.info("media configured")
        bin_ = media.get_element()
        mixer = bin_.get_by_name("mix")
        if mixer is not None and self.scene is not None:
            self.scene.attach(mixer.get_static_pad("sink_1"))
        src = bin_.get_by_name("src")
        if src is None or not self._args.overlay_time:
            return
        stamper = TimeStamper(bin_.get_by_name("clock"))
        self._stampers.append(stamper)
        src.get_static_pad("src").add_probe(Gst.PadProbeType.BUFFER, stamper)

    def _on_client_connected(
        self, _server: GstRtspServer.RTSPServer, client: GstRtspServer.RTSPClient
    ) -> None:
        connection = client.get_connection()
        logger.info("client connected from %s", connection.get_ip() if connection else "?")


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True, help="0 picks a free port")
    parser.add_argument("--mount", default="/cam")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--fps", type=int, default=15)
    parser.add_argument("--gop", type=int, default=30, help="keyframe interval in frames")
    parser.add_argument("--bitrate", type=int, default=800, help="kbit/s")
    parser.add_argument("--encoder", choices=("x264", "openh264"), default="x264")
    parser.add_argument("--h264-profile", choices=("baseline", "main", "high"), default="baseline",
                        help="main and high need --encoder x264")
    parser.add_argument("--pattern", default="ball", help="videotestsrc pattern")
    parser.add_argument(
        "--horizontal-speed", type=int, default=0, help="scroll the pattern, pixels per frame"
    )
    parser.add_argument(
        "--scene",
        choices=("pattern", "motion", "person"),
        default="pattern",
        help="pattern alone, or a block / a person on the pattern (see the module docstring)",
    )
    parser.add_argument(
        "--object-area",
        type=floats(4),
        default=(0.0, 0.0, 1.0, 1.0),
        help="x0,y0,x1,y1 (0..1): where the scene's object stays and moves",
    )
    parser.add_argument("--moving", action="store_true", help="the object moves from the start")
    parser.add_argument("--object-grey", type=int, default=0xE6,
                        help="grey level 0-255 of the motion scene's block (light by default)")
    parser.add_argument("--person-image", help="PNG photo of a standing person")
    parser.add_argument(
        "--person-crop", type=ints(4), help="left,top,right,bottom of the person in the photo"
    )
    parser.add_argument("--overlay-time", action="store_true", help="burn the wall clock in")
    parser.add_argument("--no-video", action="store_true", help="serve audio only")
    parser.add_argument("--audio", action="store_true", help="add an audio track to the video")
    parser.add_argument("--codec", choices=("h264", "h265", "mjpeg"), default="h264")
    parser.add_argument("--audio-codec", choices=("pcmu", "pcma", "aac"), default="pcmu")
    parser.add_argument("--tone-hz", type=int, default=440, help="the audio tone's frequency")
    parser.add_argument("--user")
    parser.add_argument("--password")
    parser.add_argument("--auth-method", choices=("basic", "digest"), default="digest")
    args = parser.parse_args(argv)
    if not args.mount.startswith("/"):
        parser.error("--mount must start with /")
    if (args.user is None) != (args.password is None):
        parser.error("--user and --password go together")
    if args.scene == "person" and (args.person_image is None or args.person_crop is None):
        parser.error("--scene=person needs --person-image and --person-crop")
    x0, y0, x1, y1 = args.object_area
    if not (0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1):
        parser.error("--object-area must be x0,y0,x1,y1 with 0 <= x0 < x1 <= 1, same for y")
    return args


def floats(count: int) -> Callable[[str], tuple[float, ...]]:
    """An argparse type: ``count`` comma-separated numbers."""

    def parse(text: str) -> tuple[float, ...]:
        values = tuple(float(v) for v in text.split(","))
        if len(values) != count:
            raise argparse.ArgumentTypeError(f"expected {count} comma-separated numbers")
        return values

    return parse


def ints(count: int) -> Callable[[str], tuple[int, ...]]:
    """An argparse type: ``count`` comma-separated integers."""

    def parse(text: str) -> tuple[int, ...]:
        values = tuple(int(v) for v in text.split(","))
        if len(values) != count:
            raise argparse.ArgumentTypeError(f"expected {count} comma-separated integers")
        return values

    return parse


def watch_commands(camera: CameraServer) -> None:
    """Read ``motion on`` / ``motion off`` lines from stdin; answer each on stdout."""

    pending = bytearray()

    def on_input(channel: GLib.IOChannel, condition: GLib.IOCondition) -> bool:
        # os.read, not sys.stdin.readline: lines left in Python's buffer would wait for
        # the next write to wake this watch up.
        chunk = os.read(sys.stdin.fileno(), 4096) if condition & GLib.IOCondition.IN else b""
        if not chunk:
            return GLib.SOURCE_REMOVE  # the test closed stdin: keep serving as is
        pending.extend(chunk)
        while b"\n" in pending:
            line, _, rest = bytes(pending).partition(b"\n")
            pending[:] = rest
            command = line.decode(errors="replace").strip()
            if command in ("motion on", "motion off") and camera.scene is not None:
                camera.scene.set_moving(command == "motion on")
                print(f"OK {command}", flush=True)
            else:
                logger.warning("unknown command %r", command)
                print(f"ERROR {command}", flush=True)
        return GLib.SOURCE_CONTINUE

    channel = GLib.IOChannel.unix_new(sys.stdin.fileno())
    GLib.io_add_watch(
        channel,
        GLib.PRIORITY_DEFAULT,
        GLib.IOCondition.IN | GLib.IOCondition.HUP | GLib.IOCondition.ERR,
        on_input,
    )


def main(argv: list[str]) -> int:
    """Serve until SIGTERM/SIGINT."""
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="camera %(levelname)s %(message)s"
    )
    args = parse_args(argv)
    Gst.init(None)
    camera = CameraServer(args)
    try:
        port = camera.attach()
    except OSError as exc:
        logger.error("%s", exc)
        return 2

    loop = GLib.MainLoop()

    def on_signal(signum: int) -> bool:
        logger.info("signal %d: shutting down", signum)
        loop.quit()
        return GLib.SOURCE_REMOVE

    for signum in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_HIGH, signum, on_signal, signum)

    if camera.scene is not None:
        GLib.timeout_add(max(1, 1000 // args.fps), camera.scene.tick)
        watch_commands(camera)

    print(f"READY rtsp://127.0.0.1:{port}{args.mount}", flush=True)
    loop.run()
    camera.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
