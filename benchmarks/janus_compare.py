"""Benchmark: server CPU per WebRTC viewer, VAS and Janus measured in the same run.

    sudo .venv/bin/python -m benchmarks.janus_compare [--viewers 5 10 20 30 40] [--seconds 15]

Runs as root (network namespace; installs Debian's `janus`, GStreamer tools if missing).

Inside one network namespace with a veth test address (Janus gathers no ICE candidates on
loopback; see tests/browser/netns.py):

- an RTSP test camera (tests/camera/server.py: 1280x720 25 fps, x264 baseline ~2 Mbit/s,
  GOP 50);
- `vas up` as a user starts it (API + worker + media node, embedded SQLite and Redis),
  with a device on that camera and its stream started through the API. Its **whole process
  tree** is counted, RTSP ingest, HLS recording and health included;
- Janus (Debian's package, streaming plugin and HTTP transport only, config generated into
  a temp dir) with one `rtp` mountpoint, fed by a GStreamer relay (`rtspsrc ! udpsink`)
  that forwards the camera's RTP packets unchanged. The relay plays the role of VAS's
  ingest but is **not** counted for Janus: its CPU is reported on its own line;
- N aiortc viewers per server in separate processes (up to `--per-process` each): WHEP for
  VAS, the Janus streaming API over HTTP (create, attach, watch, start with the answer) for
  Janus. They never decode. Each RTP packet that reaches the receiver is counted, and
  sequence gaps on first arrival are counted as lost. `--receivers count` (default) does
  nothing more; `--receivers feedback` also runs aiortc's receive path (jitter buffer,
  receiver reports, REMB, NACK), so the servers handle the RTCP feedback a real viewer sends.

At every N the two servers are measured one after the other (VAS's viewers, then Janus's),
over the same window length after the same warm-up, so machine noise hits both alike.
N = 0 is one window with both servers idle but the stream live. CPU per viewer is the
increment over N = 0 divided by N. N grows while the host stays below `--max-busy`
(receivers cost CPU too): "busy" counts this benchmark's processes (servers, relay,
camera, viewers) as a share of all cores, because the host may be shared; the whole
host's busy share is reported beside it. Writes a table to stdout and JSON to `--json`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import selectors
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import httpx

from benchmarks.common import progress
from benchmarks.host import TreeCpu, Window, ensure_debian_packages, machine
from tests.browser.netns import TestNetns
from tests.camera import SERVER_SCRIPT, SYSTEM_PYTHON, CameraProfile
from tests.e2e.processes import VAS, clean_env, stop_process

REPO = Path(__file__).resolve().parent.parent
CAMERA = CameraProfile(width=1280, height=720, fps=25, gop=50, bitrate_kbps=2000,
                       pattern="smpte", horizontal_speed=4)
ADMIN_SECRET = "janus-compare-" + uuid.uuid4().hex
JANUS_MOUNTPOINT = 1
JANUS_PLUGINS = "/usr/lib/x86_64-linux-gnu/janus"
GST = "/usr/lib/x86_64-linux-gnu/gstreamer-1.0"
DEBIAN = {  # what the run needs -> the Debian package that brings it
    "janus": "janus",
    "gst-launch-1.0": "gstreamer1.0-tools",
    SYSTEM_PYTHON: "python3-gst-1.0",
    "/usr/lib/x86_64-linux-gnu/girepository-1.0/GstRtspServer-1.0.typelib":
        "gir1.2-gst-rtsp-server-1.0",
    f"{GST}/libgstvideotestsrc.so": "gstreamer1.0-plugins-base",
    f"{GST}/libgstrtsp.so": "gstreamer1.0-plugins-good",  # rtspsrc (the relay)
    f"{GST}/libgstudp.so": "gstreamer1.0-plugins-good",
    f"{GST}/libgstx264.so": "gstreamer1.0-plugins-ugly",  # the camera's encoder
}


# --- viewers (separate processes, inside the namespace) ------------------------------------


def count_instead_of_decoding(mode: str) -> None:
    """Make every aiortc RTCRtpReceiver count packets and sequence gaps; never decode.

    `count`: nothing else (no jitter buffer, no RTCP feedback but the periodic empty
    receiver report). `feedback`: then aiortc's own receive path runs too (jitter buffer,
    receiver reports, REMB, NACK), and only the decoder thread is replaced by one that
    drops the frames. Both servers' viewers run the same mode.
    """
    import aiortc.rtcrtpreceiver as receiver_module
    from aiortc.rtcrtpreceiver import RTCRtpReceiver

    original = RTCRtpReceiver._handle_rtp_packet

    def drop_frames(loop: Any, input_q: Any, output_q: Any, decode_error: Any) -> None:
        while input_q.get() is not None:
            pass
        asyncio.run_coroutine_threadsafe(output_q.put(None), loop)

    receiver_module.decoder_worker = drop_frames  # type: ignore[assignment]

    async def handle(self: Any, packet: Any, arrival_time_ms: int) -> None:
        count(self, packet)
        if mode == "feedback":
            await original(self, packet, arrival_time_ms)

    def count(self: Any, packet: Any) -> None:
        stats = self.__dict__.setdefault("_bench_counts", {})
        entry = stats.get(packet.ssrc)
        if entry is None:
            stats[packet.ssrc] = [1, 0, packet.sequence_number]
            return
        gap = (packet.sequence_number - entry[2]) & 0xFFFF
        if gap >= 0x8000:  # late or duplicated: counted, not a gap
            entry[0] += 1
            return
        if gap > 1:
            entry[1] += gap - 1
        entry[2] = packet.sequence_number
        entry[0] += 1

    RTCRtpReceiver._handle_rtp_packet = handle  # type: ignore[method-assign]


def viewer_counts(pc: Any) -> tuple[int, int]:
    """(packets, lost) of the SSRC that carried the most packets on this connection."""
    best = (0, 0)
    for transceiver in pc.getTransceivers():
        for packets, lost, _ in transceiver.receiver.__dict__.get("_bench_counts", {}).values():
            if packets > best[0]:
                best = (packets, lost)
    return best


async def wait_connected(pc: Any) -> None:
    deadline = time.monotonic() + 30
    while pc.connectionState != "connected":
        if pc.connectionState in ("failed", "closed") or time.monotonic() > deadline:
            raise RuntimeError(f"peer connection {pc.connectionState}")
        await asyncio.sleep(0.05)


async def vas_viewer(http: httpx.AsyncClient, spec: dict[str, Any]) -> tuple[Any, Any]:
    from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver("video", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    headers = {"Authorization": f"Bearer {spec['token']}"}
    answer = await http.post(f"{spec['api']}/v2/streams/{spec['stream']}/whep",
                             content=pc.localDescription.sdp,
                             headers={**headers, "Content-Type": "application/sdp"})
    answer.raise_for_status()
    location = spec["api"] + answer.headers["location"]
    await pc.setRemoteDescription(RTCSessionDescription(answer.text, "answer"))
    await wait_connected(pc)

    async def close() -> None:
        await pc.close()
        with contextlib.suppress(httpx.HTTPError):
            await http.delete(location, headers=headers)

    return pc, close


async def janus_request(http: httpx.AsyncClient, url: str, body: dict[str, Any]) -> Any:
    answer = await http.post(url, json={**body, "transaction": uuid.uuid4().hex})
    answer.raise_for_status()
    data = answer.json()
    if data.get("janus") == "error":
        raise RuntimeError(f"janus: {data}")
    return data


async def janus_viewer(http: httpx.AsyncClient, spec: dict[str, Any]) -> tuple[Any, Any]:
    from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

    base = spec["janus"]
    session = (await janus_request(http, base, {"janus": "create"}))["data"]["id"]
    handle = (await janus_request(http, f"{base}/{session}", {
        "janus": "attach", "plugin": "janus.plugin.streaming"}))["data"]["id"]
    await janus_request(http, f"{base}/{session}/{handle}", {
        "janus": "message", "body": {"request": "watch", "id": JANUS_MOUNTPOINT}})
    offer = None
    deadline = time.monotonic() + 30
    while offer is None:
        if time.monotonic() > deadline:
            raise RuntimeError("janus sent no offer")
        event = (await http.get(f"{base}/{session}", params={"maxev": 1})).json()
        plugin = event.get("plugindata", {}).get("data", {})
        if "error" in plugin:
            raise RuntimeError(f"janus watch: {plugin}")
        offer = event.get("jsep")
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    await pc.setRemoteDescription(RTCSessionDescription(offer["sdp"], offer["type"]))
    await pc.setLocalDescription(await pc.createAnswer())
    await janus_request(http, f"{base}/{session}/{handle}", {
        "janus": "message", "body": {"request": "start"},
        "jsep": {"type": "answer", "sdp": pc.localDescription.sdp}})
    await wait_connected(pc)

    async def close() -> None:
        await pc.close()
        with contextlib.suppress(httpx.HTTPError, RuntimeError):
            await janus_request(http, f"{base}/{session}", {"janus": "destroy"})

    return pc, close


def viewers_main(spec: dict[str, Any]) -> None:
    """A viewer process: connect `count` viewers, then answer `report` / `stop` on stdin."""
    count_instead_of_decoding(spec["receivers"])

    async def run() -> None:
        loop = asyncio.get_running_loop()
        connect = vas_viewer if spec["kind"] == "vas" else janus_viewer
        async with httpx.AsyncClient(timeout=30) as http:
            viewers = []
            try:
                for _ in range(spec["count"]):
                    viewers.append(await connect(http, spec))
                print(json.dumps({"ready": len(viewers)}), flush=True)
            except Exception as exc:  # reported to the parent, which gives up
                print(json.dumps({"error": repr(exc)}), flush=True)
            while True:
                line = (await loop.run_in_executor(None, sys.stdin.readline)).strip()
                if line == "report":
                    print(json.dumps({"counts": [viewer_counts(pc) for pc, _ in viewers]}),
                          flush=True)
                elif line in ("stop", ""):
                    for _, close in viewers:
                        with contextlib.suppress(Exception):
                            await close()
                    return

    asyncio.run(run())


class ViewerGroup:
    """N viewers of one server, in processes of at most `per_process` viewers each."""

    def __init__(self, netns: TestNetns, spec: dict[str, Any], n: int, per_process: int,
                 logdir: Path) -> None:
        self.processes: list[subprocess.Popen[str]] = []
        self._logs: list[IO[bytes]] = []
        remaining = n
        while remaining > 0:
            count = min(per_process, remaining)
            remaining -= count
            log = open(logdir / f"viewers-{spec['kind']}-{len(self.processes)}.log", "ab")  # noqa: SIM115
            self._logs.append(log)
            self.processes.append(netns.popen(
                [sys.executable, "-m", "benchmarks.janus_compare", "--viewer-process",
                 json.dumps({**spec, "count": count})],
                cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                text=True, env={**os.environ, "PYTHONPATH": str(REPO)}))
        for process in self.processes:
            answer = self._read(process, timeout=60 + 5 * per_process)
            if "error" in answer:
                raise RuntimeError(f"{spec['kind']} viewers: {answer['error']}")

    @staticmethod
    def _read(process: subprocess.Popen[str], timeout: float) -> dict[str, Any]:
        assert process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            if not selector.select(timeout):
                raise TimeoutError(f"viewer process {process.pid} silent for {timeout} s")
        line = process.stdout.readline()
        if not line:
            raise RuntimeError(f"viewer process {process.pid} exited ({process.poll()})")
        answer: dict[str, Any] = json.loads(line)
        return answer

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.processes]

    def counts(self) -> list[tuple[int, int]]:
        for process in self.processes:
            assert process.stdin is not None
            process.stdin.write("report\n")
            process.stdin.flush()
        out: list[tuple[int, int]] = []
        for process in self.processes:
            out += [tuple(c) for c in self._read(process, timeout=30)["counts"]]  # type: ignore[misc]
        return out

    def close(self) -> None:
        for process in self.processes:
            with contextlib.suppress(OSError):
                assert process.stdin is not None
                process.stdin.write("stop\n")
                process.stdin.close()
        for process in self.processes:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                stop_process(process)
            if process.stdout is not None:
                process.stdout.close()
        for log in self._logs:
            log.close()


# --- servers --------------------------------------------------------------------------------


def write_janus_config(folder: Path, netns: TestNetns, http_port: int, rtp_port: int) -> Path:
    """janus.jcfg, the streaming plugin's mountpoint and the HTTP transport, in `folder`.

    Only the streaming plugin and the HTTP transport are loaded (symlinked into folders of
    their own); ICE gathers on the namespace's veth address only; sessions never time out
    (the viewers do not long-poll during the measurement).
    """
    plugins, transports, empty = folder / "plugins", folder / "transports", folder / "none"
    for sub in (plugins, transports, empty):
        sub.mkdir()
    (plugins / "libjanus_streaming.so").symlink_to(f"{JANUS_PLUGINS}/plugins/libjanus_streaming.so")
    (transports / "libjanus_http.so").symlink_to(f"{JANUS_PLUGINS}/transports/libjanus_http.so")
    (folder / "janus.jcfg").write_text(f"""\
general: {{
    configs_folder = "{folder}"
    plugins_folder = "{plugins}"
    transports_folder = "{transports}"
    events_folder = "{empty}"
    loggers_folder = "{empty}"
    debug_level = 3
    session_timeout = 0
    server_name = "vas-benchmark"
}}
media: {{
    ipv6 = false
    rtp_port_range = "31000-31999"
}}
nat: {{
    nice_debug = false
    ice_enforce_list = "{netns.address}"
}}
""")
    (folder / "janus.plugin.streaming.jcfg").write_text(f"""\
general: {{
}}
camera: {{
    type = "rtp"
    id = {JANUS_MOUNTPOINT}
    description = "benchmark camera (H.264 RTP from the relay)"
    media = (
        {{
            type = "video"
            mid = "v"
            port = {rtp_port}
            pt = 96
            codec = "h264"
            fmtp = "profile-level-id=42e01f;packetization-mode=1"
        }}
    )
}}
""")
    (folder / "janus.transport.http.jcfg").write_text(f"""\
general: {{
    json = "compact"
    base_path = "/janus"
    http = true
    port = {http_port}
    https = false
}}
admin: {{
    admin_http = false
}}
""")
    return folder / "janus.jcfg"


class Stack:
    """The namespace, camera, `vas up`, relay and Janus; everything stopped on exit."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.processes: dict[str, subprocess.Popen[Any]] = {}
        self._logs: list[IO[bytes]] = []
        self.receivers = "count"

    def _start(self, name: str, cmd: list[str], **kwargs: Any) -> subprocess.Popen[Any]:
        log = open(self.workdir / f"{name}.log", "wb")  # noqa: SIM115
        self._logs.append(log)
        kwargs.setdefault("stdout", log)
        process = self.netns.popen(cmd, stdin=subprocess.DEVNULL, stderr=log, **kwargs)
        self.processes[name] = process
        return process

    def log(self, name: str) -> str:
        path = self.workdir / f"{name}.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    @contextlib.contextmanager
    def run(self) -> Iterator[Stack]:
        with TestNetns() as netns:
            self.netns = netns
            try:
                self._start_camera()
                self._start_vas()
                self._start_janus()
                yield self
            finally:
                for name in reversed(list(self.processes)):
                    process = self.processes[name]
                    if name == "vas":
                        process.send_signal(2)  # Ctrl-C, as a user stops it
                        with contextlib.suppress(subprocess.TimeoutExpired):
                            process.wait(30)
                    stop_process(process)
                for log in self._logs:
                    log.close()

    def _start_camera(self) -> None:
        port = self.netns.free_port()
        process = self._start("camera", [SYSTEM_PYTHON, str(SERVER_SCRIPT), f"--port={port}",
                                         *CAMERA.server_args()], stdout=subprocess.PIPE)
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            if not selector.select(20):
                raise RuntimeError(f"camera not ready: {self.log('camera')}")
        line = process.stdout.readline().decode()
        if not line.startswith("READY "):
            raise RuntimeError(f"camera said {line!r}: {self.log('camera')}")
        self.camera_url = f"rtsp://127.0.0.1:{port}{CAMERA.mount}"

    def _start_vas(self) -> None:
        port = self.netns.free_port()
        data = self.workdir / "vas"
        data.mkdir()
        env = clean_env(VAS_HOST=f"127.0.0.1,{self.netns.address}", VAS_PORT=str(port),
                        VAS_DATA_DIR=str(data / "var"), VAS_ADMIN_CLIENT_SECRET=ADMIN_SECRET,
                        VAS_WEBRTC_ANNOUNCED_IP=self.netns.address)
        process = self._start("vas", [VAS, "up"], env=env, cwd=data)
        self.api = f"http://{self.netns.address}:{port}"
        deadline = time.monotonic() + 90
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"vas up did not start: {self.log('vas')}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.api}/v2/health/ready", timeout=2).status_code == 200:
                    break
            time.sleep(0.3)
        self.http = httpx.Client(base_url=self.api, timeout=60)
        self.token = self.http.post("/v2/auth/token", json={
            "client_id": "admin", "client_secret": ADMIN_SECRET}).json()["access_token"]
        self.http.headers["Authorization"] = f"Bearer {self.token}"
        device = self.http.post("/api/v1/devices", json={
            "name": "benchmark camera", "rtsp_url": self.camera_url})
        device.raise_for_status()
        started = self.http.post(f"/api/v1/devices/{device.json()['id']}/start-stream")
        started.raise_for_status()
        self.stream_id = started.json()["v2_stream_id"]

    def _start_janus(self) -> None:
        http_port, rtp_port = self.netns.free_port(), self.netns.free_port()
        folder = self.workdir / "janus"
        folder.mkdir()
        config = write_janus_config(folder, self.netns, http_port, rtp_port)
        self._start("janus", ["janus", "-C", str(config), "-F", str(folder), "-o"])
        self.netns.wait_listening(http_port, timeout=20, process=self.processes["janus"])
        self.janus = f"http://127.0.0.1:{http_port}/janus"
        # The relay: the camera's RTP packets, unchanged, to the mountpoint's port.
        self._start("relay", ["gst-launch-1.0", "-q", "rtspsrc", f"location={self.camera_url}",
                              "protocols=tcp", "latency=0", "!", "udpsink", "host=127.0.0.1",
                              f"port={rtp_port}", "sync=false", "async=false"])

    def vas_health(self) -> dict[str, Any]:
        answer: dict[str, Any] = self.http.get(f"/v2/streams/{self.stream_id}/health").json()
        return answer

    def spec(self, kind: str) -> dict[str, Any]:
        return {"kind": kind, "api": self.api, "token": self.token, "stream": self.stream_id,
                "janus": self.janus, "receivers": self.receivers}


# --- measurement ----------------------------------------------------------------------------


def window(stack: Stack, viewers: ViewerGroup | None, seconds: float) -> dict[str, Any]:
    trees = {name: TreeCpu([stack.processes[name].pid])
             for name in ("vas", "janus", "relay", "camera")}
    trees["viewer_processes"] = TreeCpu(viewers.pids if viewers else [])
    measured = Window(trees)
    before = viewers.counts() if viewers else []
    measured.begin()
    time.sleep(seconds)
    result: dict[str, Any] = measured.end()
    # What this benchmark's own processes use, as a share of all cores (the host is shared).
    result["ours_busy"] = sum(result[name] for name in trees) / (os.cpu_count() or 1)
    after = viewers.counts() if viewers else []
    received = sum(a[0] - b[0] for a, b in zip(after, before, strict=True))
    lost = sum(a[1] - b[1] for a, b in zip(after, before, strict=True))
    per_viewer = [(a[0] - b[0]) / result["seconds"] for a, b in zip(after, before, strict=True)]
    result.update(received=received, lost=lost,
                  loss=lost / (received + lost) if received + lost else 0.0,
                  pkt_s_min=min(per_viewer, default=0.0),
                  pkt_s_mean=sum(per_viewer) / len(per_viewer) if per_viewer else 0.0)
    return result


def measure(stack: Stack, kind: str, n: int, args: argparse.Namespace) -> dict[str, Any]:
    progress(f"{kind}: {n} viewers connecting")
    began = time.monotonic()
    stack.receivers = args.receivers
    group = ViewerGroup(stack.netns, stack.spec(kind), n, args.per_process, stack.workdir)
    try:
        connect_s = time.monotonic() - began
        time.sleep(args.warmup)
        result = window(stack, group, args.seconds)
    finally:
        group.close()
    result.update(kind=kind, viewers=n, connect_s=connect_s)
    progress(f"{kind}: {n} viewers: vas {result['vas'] * 1000:.0f} ms/s, janus "
             f"{result['janus'] * 1000:.0f} ms/s, ours {result['ours_busy'] * 100:.0f} % of "
             f"the host (whole host {result['host_busy'] * 100:.0f} %), "
             f"loss {result['loss'] * 100:.2f} %")
    time.sleep(args.settle)
    return result


def table(idle: dict[str, Any], runs: list[dict[str, Any]]) -> str:
    rows = [
        "| viewers | VAS CPU | VAS per viewer | VAS loss | VAS pkt/s/viewer | Janus CPU "
        "| Janus per viewer | Janus loss | Janus pkt/s/viewer | ratio VAS/Janus "
        "| viewers' CPU (VAS / Janus) | benchmark's share of the host (VAS / Janus) "
        "| whole host busy (VAS / Janus) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        f"| 0 (stream live) | {idle['vas'] * 1000:.0f} ms/s | - | - | - "
        f"| {idle['janus'] * 1000:.0f} ms/s | - | - | - | - | - "
        f"| {idle['ours_busy'] * 100:.0f} % | {idle['host_busy'] * 100:.0f} % |",
    ]
    by_n: dict[int, dict[str, dict[str, Any]]] = {}
    for run in runs:
        by_n.setdefault(run["viewers"], {})[run["kind"]] = run
    for n, pair in sorted(by_n.items()):
        vas, janus = pair.get("vas"), pair.get("janus")
        if vas is None or janus is None:
            continue
        vas_per = (vas["vas"] - idle["vas"]) / n * 1000
        janus_per = (janus["janus"] - idle["janus"]) / n * 1000
        # The same, over each server's CPU while the *other* server had the viewers (a
        # baseline taken a minute apart instead of at the start).
        vas_adj = (vas["vas"] - janus["vas"]) / n * 1000
        janus_adj = (janus["janus"] - vas["janus"]) / n * 1000
        ratio = f"{vas_per / janus_per:.1f}" if janus_per > 0 else "-"
        rows.append(
            f"| {n} | {vas['vas'] * 1000:.0f} ms/s | {vas_per:.1f} ({vas_adj:.1f}) ms/s "
            f"| {vas['loss'] * 100:.2f} % | {vas['pkt_s_mean']:.0f} "
            f"| {janus['janus'] * 1000:.0f} ms/s | {janus_per:.1f} ({janus_adj:.1f}) ms/s "
            f"| {janus['loss'] * 100:.2f} % | {janus['pkt_s_mean']:.0f} | {ratio} "
            f"| {vas['viewer_processes'] * 1000:.0f} / {janus['viewer_processes'] * 1000:.0f} ms/s "
            f"| {vas['ours_busy'] * 100:.0f} / {janus['ours_busy'] * 100:.0f} % "
            f"| {vas['host_busy'] * 100:.0f} / {janus['host_busy'] * 100:.0f} % |")
    rows.append("")
    rows.append("Per viewer: increment over N = 0 at the start; in brackets, over the same "
                "server's CPU while the other server had the N viewers.")
    rows.append(f"Relay (GStreamer, RTSP → RTP for Janus; not counted for Janus): "
                f"{idle['relay'] * 1000:.0f} ms/s at N = 0; camera: "
                f"{idle['camera'] * 1000:.0f} ms/s.")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--viewers", type=int, nargs="+", default=[5, 10, 20, 30, 40])
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--warmup", type=float, default=4.0)
    parser.add_argument("--settle", type=float, default=3.0, help="pause after a group leaves")
    parser.add_argument("--per-process", type=int, default=5, help="viewers per process")
    parser.add_argument("--receivers", choices=("count", "feedback"), default="count",
                        help="count: viewers only count packets; feedback: aiortc's receive "
                        "path (jitter buffer, RR, REMB, NACK) runs too, without decoding")
    parser.add_argument("--max-busy", type=float, default=0.6,
                        help="stop growing N once the benchmark's processes (servers, relay, "
                        "camera, viewers) use more than this share of all cores (0 to 1)")
    parser.add_argument("--json", type=Path, default=Path("artifacts/janus_compare.json"),
                        help="where the figures go as JSON (artifacts/ is not in git)")
    parser.add_argument("--keep", action="store_true", help="keep the work dir (logs)")
    parser.add_argument("--table-from", type=Path, help="print the table of an earlier JSON")
    parser.add_argument("--viewer-process", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.table_from:
        earlier = json.loads(args.table_from.read_text())
        print(table(earlier["idle"], earlier["runs"]))
        return
    if args.viewer_process:
        viewers_main(json.loads(args.viewer_process))
        return
    if os.geteuid() != 0:
        raise SystemExit("run as root: the benchmark creates a network namespace")
    ensure_debian_packages(DEBIAN)
    workdir = Path(tempfile.mkdtemp(prefix="janus-compare-"))
    host_before = machine()
    runs: list[dict[str, Any]] = []
    try:
        with Stack(workdir).run() as stack:
            progress(f"netns {stack.netns.name} ({stack.netns.address}); waiting for LIVE")
            time.sleep(args.warmup + 4)
            health = stack.vas_health()
            progress(f"stream health: {json.dumps(health)[:300]}")
            idle = window(stack, None, args.seconds)
            idle.update(kind="both", viewers=0)
            progress(f"idle: vas {idle['vas'] * 1000:.0f} ms/s, janus {idle['janus'] * 1000:.0f}"
                     f" ms/s, relay {idle['relay'] * 1000:.0f} ms/s")
            for n in args.viewers:
                pair = [measure(stack, kind, n, args) for kind in ("vas", "janus")]
                runs += pair
                if max(r["ours_busy"] for r in pair) > args.max_busy:
                    progress(f"benchmark above {args.max_busy * 100:.0f} % of the host at "
                             f"N = {n}: stop")
                    break
    finally:
        if not args.keep:
            subprocess.run(["rm", "-rf", str(workdir)], check=False)
        else:
            progress(f"logs kept in {workdir}")
    report = {"machine_before": host_before, "machine_after": machine(),
              "camera": CAMERA.__dict__, "health_vas": health, "idle": idle, "runs": runs,
              "args": {k: v for k, v in vars(args).items() if k != "viewer_process"
                       and not isinstance(v, Path)}}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    print(table(idle, runs))
    print(f"\nJSON: {args.json}")


if __name__ == "__main__":
    main()
