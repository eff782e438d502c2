"""Process metrics of workers and media nodes, served on `VAS_METRICS_PORT` (Prometheus).

Job durations and failures per actor come from a Dramatiq middleware; a media node adds,
read at scrape time from its pipelines, each stream's ingest counters and fan-out totals
(labels: the stream id, bounded by the node's capacity; never consumer ids). The CPU time
of the heavy media work (detection, transcoding) is counted by the threads doing it
(`cpu_spent`) and served by every process (`CpuCollector`).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import dramatiq
from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:  # the node's modules count CPU here: no import back at run time
    from jobs.node.runtime import MediaNodeRuntime

# What `cpu_spent` counts: kind → (metric family, help). Label `role`: where the work ran
# ("node" for a media node's threads, "worker" for a worker's jobs), a handful of values.
CPU_KINDS = {
    "detection": ("vas_detection_cpu_seconds", "CPU time spent on object detection: a "
                  "node's decoding, sampling and motion; a worker's detector"),
    "transcoder": ("vas_transcoder_cpu_seconds", "CPU time spent transcoding video "
                   "(H.265 to H.264)"),
}
_cpu_lock = threading.Lock()
_cpu_totals: dict[tuple[str, str], float] = defaultdict(float)


def add_cpu_seconds(kind: str, role: str, seconds: float) -> None:
    """Count `seconds` of CPU for `kind` (a key of CPU_KINDS) on behalf of `role`."""
    if kind not in CPU_KINDS:
        raise ValueError(f"unknown CPU kind {kind!r}")
    with _cpu_lock:
        _cpu_totals[(kind, role)] += max(0.0, seconds)


@contextlib.contextmanager
def cpu_spent(kind: str, role: str) -> Iterator[None]:
    """Count the CPU time the calling thread spends inside the block (time.thread_time:
    this thread only, so other threads' work and time waiting are not counted).

    The transcoder counts its work so, from the thread that encodes::

        with cpu_spent("transcoder", "node"):
            packets = encoder.encode(frame)

    (`add_cpu_seconds("transcoder", "node", s)` when it measures itself, e.g. from `media`,
    which cannot import `jobs`: its caller passes the function in.)
    """
    started = time.thread_time()
    try:
        yield
    finally:
        add_cpu_seconds(kind, role, time.thread_time() - started)


class CpuCollector(Collector):
    """The CPU counters of `cpu_spent`; every kind shows the process's `role` from the
    start (0 until used), so a dashboard's rate() has a series before the first job."""

    def __init__(self, role: str) -> None:
        self._role = role

    def collect(self) -> Iterator[Any]:
        with _cpu_lock:
            totals = dict(_cpu_totals)
        for kind, (name, text) in CPU_KINDS.items():
            family = CounterMetricFamily(name, text, labels=["role"])
            roles = {r for k, r in totals if k == kind} | {self._role}
            for role in sorted(roles):
                family.add_metric([role], totals.get((kind, role), 0.0))
            yield family


JOB_BUCKETS = (0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0)


class JobMetrics(dramatiq.Middleware):
    """Duration and failures of every job this process runs, per actor."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.duration = Histogram("vas_job_duration_seconds", "Time a job ran", ["actor"],
                                  buckets=JOB_BUCKETS, registry=registry)
        self.failures = Counter("vas_job_failures_total", "Jobs that ended with an error",
                                ["actor"], registry=registry)
        self._started: dict[str, float] = {}
        self._lock = threading.Lock()

    def before_process_message(self, broker: Any, message: Any) -> None:
        with self._lock:
            self._started[message.message_id] = time.perf_counter()

    def after_process_message(self, broker: Any, message: Any, *, result: Any = None,
                              exception: BaseException | None = None) -> None:
        with self._lock:
            started = self._started.pop(message.message_id, None)
        if started is not None:
            self.duration.labels(actor=message.actor_name).observe(time.perf_counter() - started)
        if exception is not None:
            self.failures.labels(actor=message.actor_name).inc()

    after_skip_message = after_process_message


class NodeCollector(Collector):
    """A media node's streams, read from its runtime at each scrape."""

    def __init__(self, runtime: MediaNodeRuntime) -> None:
        self._runtime = runtime

    def collect(self) -> Iterator[Any]:
        packets = CounterMetricFamily("vas_ingest_packets", "Video packets received from the "
                                      "camera", labels=["stream"])
        keyframes = CounterMetricFamily("vas_ingest_keyframes", "Video keyframes received from "
                                        "the camera", labels=["stream"])
        data = CounterMetricFamily("vas_ingest_bytes", "Video bytes received from the camera",
                                   labels=["stream"])
        reconnects = CounterMetricFamily("vas_ingest_reconnects", "Times the camera was lost "
                                         "and reconnected", labels=["stream"])
        sent = CounterMetricFamily("vas_fanout_packets_sent", "Packets sent to WebRTC viewers",
                                   labels=["stream"])
        dropped = CounterMetricFamily("vas_fanout_packets_dropped", "Packets dropped for slow "
                                      "WebRTC viewers", labels=["stream"])
        viewers = GaugeMetricFamily("vas_stream_viewers", "WebRTC viewers attached",
                                    labels=["stream"])
        streams = GaugeMetricFamily("vas_node_streams", "Streams this node runs",
                                    value=len(self._runtime.pipelines))
        lost_media = CounterMetricFamily(
            "vas_media_packets_dropped", "Video packets a bounded queue of the media path "
            "dropped (to the next keyframe)", labels=["stream", "queue"])
        gop_overflows = CounterMetricFamily(
            "vas_gop_cache_overflows", "GOPs too large for the GOP cache, not kept",
            labels=["stream"])
        for stream_id, pipeline in list(self._runtime.pipelines.items()):
            label = [str(stream_id)]
            stats = pipeline.ingest.metrics.stats()
            packets.add_metric(label, stats.packets_total)
            keyframes.add_metric(label, stats.keyframes_total)
            data.add_metric(label, stats.bytes_total)
            reconnects.add_metric(label, stats.reconnects)
            gop_overflows.add_metric(label, pipeline.ingest.gop_cache.overflows)
            if not pipeline.wired:  # its camera not opened yet: no viewers nor fan-out
                continue
            out, lost = pipeline.viewers.router.fanout.totals()
            sent.add_metric(label, out)
            dropped.add_metric(label, lost)
            viewers.add_metric(label, pipeline.viewers.count)
            for queue, count in media_drops(pipeline, lost):
                lost_media.add_metric([str(stream_id), queue], count)
        yield from (packets, keyframes, data, reconnects, sent, dropped, viewers, streams,
                    lost_media, gop_overflows)


def media_drops(pipeline: Any, viewer_drops: int) -> list[tuple[str, int]]:
    """Drops of each bounded queue of a stream's media path, by queue: the recorder's writer
    queue, the hand-off from the ingest thread to the loop, the viewers' queues, the
    detection decoder's queue."""
    detection = pipeline.detection
    return [
        ("recorder", pipeline.recorder.dropped),
        ("fanout", pipeline.viewers.router.fanout.handoff_dropped),
        ("viewer", viewer_drops),
        ("detection", detection.counters.packets_dropped if detection is not None else 0),
    ]


LAG_PROBE_S = 0.5
LAG_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0)


async def watch_loop_lag(registry: CollectorRegistry) -> None:
    """Observe, every LAG_PROBE_S, how late the event loop wakes a timer. On a media node
    every viewer's ICE, DTLS and RTP waits on that loop: a viewer's consent check left
    unanswered for 0.5 s counts as lost, six in a row end its connection."""
    lag = Histogram("vas_event_loop_lag_seconds", "How late the event loop ran a timer "
                    f"(probed every {LAG_PROBE_S} s)", buckets=LAG_BUCKETS, registry=registry)
    while True:
        began = time.monotonic()
        await asyncio.sleep(LAG_PROBE_S)
        lag.observe(max(0.0, time.monotonic() - began - LAG_PROBE_S))


def serve_metrics(port: int, host: str, registry: CollectorRegistry) -> Any:
    """Serve `registry` on host:port in a thread of its own; returns the server to shut."""
    server, _ = start_http_server(port, addr=host, registry=registry)
    return server
