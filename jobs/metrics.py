"""Process metrics of workers and media nodes, served on `VAS_METRICS_PORT` (Prometheus).

Job durations and failures per actor come from a Dramatiq middleware; a media node adds,
read at scrape time from its pipelines, each stream's ingest counters and fan-out totals
(labels: the stream id, bounded by the node's capacity; never consumer ids).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import dramatiq
from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from jobs.node.runtime import MediaNodeRuntime

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
            data.add_metric(label, stats.bytes_total)
            reconnects.add_metric(label, stats.reconnects)
            out, lost = pipeline.viewers.router.fanout.totals()
            sent.add_metric(label, out)
            dropped.add_metric(label, lost)
            viewers.add_metric(label, pipeline.viewers.count)
            for queue, count in media_drops(pipeline, lost):
                lost_media.add_metric([str(stream_id), queue], count)
            gop_overflows.add_metric(label, pipeline.ingest.gop_cache.overflows)
        yield from (packets, data, reconnects, sent, dropped, viewers, streams, lost_media,
                    gop_overflows)


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


def serve_metrics(port: int, host: str, registry: CollectorRegistry) -> Any:
    """Serve `registry` on host:port in a thread of its own; returns the server to shut."""
    server, _ = start_http_server(port, addr=host, registry=registry)
    return server
