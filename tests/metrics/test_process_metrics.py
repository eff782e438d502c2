"""Process metrics of a real media node and worker on VAS_METRICS_PORT, scraped as
Prometheus scrapes them: ingest and fan-out counters per stream, job durations per actor."""

from __future__ import annotations

import asyncio

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.processes import free_port
from tests.vas_fixtures import add_device


def _scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


async def test_a_media_node_counts_its_streams_and_jobs(client, start_process, start_camera):
    port = free_port()
    start_process("media-node", "registered", VAS_METRICS_PORT=str(port))
    camera = start_camera()
    device_id = await add_device(client, camera.url)
    started = await client.post(f"/api/v1/devices/{device_id}/start-stream", timeout=60)
    assert started.status_code == 200, started.text
    stream = (("stream", started.json()["v2_stream_id"]),)
    for _ in range(100):  # packets keep arriving: wait until some are counted
        samples = await asyncio.to_thread(_scrape, port)
        if (samples.get(("vas_ingest_packets_total", stream), 0) > 15
                and samples.get(("vas_ingest_keyframes_total", stream))
                and samples.get(("vas_detection_cpu_seconds_total", (("role", "node"),)))):
            break
        await asyncio.sleep(0.1)
    assert samples[("vas_ingest_packets_total", stream)] > 15
    # The camera sends a keyframe every `gop` frames (30 at 15 fps): some keyframes, never
    # more than packets, and no more than one a GOP (only keyframes are counted).
    keyframes = samples[("vas_ingest_keyframes_total", stream)]
    packets = samples[("vas_ingest_packets_total", stream)]
    assert 0 < keyframes <= packets
    assert keyframes <= packets // camera.profile.gop + 1
    assert samples[("vas_ingest_bytes_total", stream)] > 1000
    assert samples[("vas_ingest_reconnects_total", stream)] == 0
    assert samples[("vas_fanout_packets_sent_total", stream)] == 0  # nobody watches
    assert samples[("vas_stream_viewers", stream)] == 0
    assert samples[("vas_node_streams", ())] == 1
    # Detection is on by default (motion, objects): the node's decoding counts its CPU.
    assert samples[("vas_detection_cpu_seconds_total", (("role", "node"),))] > 0
    assert samples[("vas_transcoder_cpu_seconds_total", (("role", "node"),))] == 0
    for queue in ("recorder", "fanout", "viewer", "detection"):  # every bounded queue
        assert samples[("vas_media_packets_dropped_total", (("queue", queue), *stream))] == 0
    assert samples[("vas_gop_cache_overflows_total", stream)] == 0
    assert samples[("vas_job_duration_seconds_count", (("actor", "start_stream"),))] == 1
    assert ("vas_job_failures_total", (("actor", "start_stream"),)) not in samples
    # The event loop's lag, probed every 0.5 s since the node started (a few seconds ago).
    probes = samples[("vas_event_loop_lag_seconds_count", ())]
    assert probes >= 1
    assert samples[("vas_event_loop_lag_seconds_bucket", (("le", "+Inf"),))] == probes


async def test_a_worker_counts_its_jobs(client, start_process):
    port = free_port()
    start_process("worker", "serving queues", VAS_METRICS_PORT=str(port))
    answer = await client.post("/api/v1/devices/validate",
                               json={"rtsp_url": f"rtsp://127.0.0.1:{free_port()}/x"}, timeout=60)
    assert answer.status_code == 200 and answer.json()["valid"] is False
    key = ("vas_job_duration_seconds_count", (("actor", "validate_rtsp"),))
    for _ in range(50):  # counted once the job has finished, just after its result is sent
        samples = await asyncio.to_thread(_scrape, port)
        if samples.get(key):
            break
        await asyncio.sleep(0.1)
    assert samples[key] == 1
    assert ("vas_detection_cpu_seconds_total", (("role", "worker"),)) in samples


def test_the_grafana_dashboard_uses_only_metrics_vas_exposes():
    """Every metric a panel queries is one the API, a worker or a node really exposes."""
    import json
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    dashboard = json.loads((root / "deploy" / "grafana" / "vas-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {name for e in exprs for name in re.findall(r"\b(vas_[a-z_]+)", e)}
    sources = "\n".join((root / path).read_text() for path in ("api/metrics.py", "jobs/metrics.py"))
    declared = set(re.findall(r'"(vas_[a-z_]+)"', sources))
    suffixes = ("_total", "_bucket", "_count", "_sum")
    for name in used:
        base = next((name.removesuffix(s) for s in suffixes if name.endswith(s)), name)
        assert base in declared or name in declared, name
    assert len(used) >= 10
