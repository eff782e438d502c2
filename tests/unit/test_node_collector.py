"""A media node's /metrics (jobs/metrics.py NodeCollector) while one of its streams has not
opened its camera yet (a take-over or start in progress): the scrape still answers, and the
stream counts in `vas_node_streams`. Found by the scale drill, whose scrape got a 500 then."""

from __future__ import annotations

import uuid
from types import SimpleNamespace

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from jobs.metrics import NodeCollector


def _connecting() -> SimpleNamespace:
    """A pipeline before its camera answered: an ingest, no viewers' side yet."""
    stats = SimpleNamespace(packets_total=0, keyframes_total=0, bytes_total=0, reconnects=0)
    ingest = SimpleNamespace(metrics=SimpleNamespace(stats=lambda: stats),
                             gop_cache=SimpleNamespace(overflows=0))
    return SimpleNamespace(wired=False, ingest=ingest)


def test_a_stream_still_connecting_counts_and_the_scrape_answers() -> None:
    runtime = SimpleNamespace(pipelines={uuid.uuid4(): _connecting()})
    registry = CollectorRegistry()
    registry.register(NodeCollector(runtime))  # type: ignore[arg-type]
    text = generate_latest(registry).decode()
    values = {(s.name, tuple(sorted(s.labels.items()))): s.value
              for family in text_string_to_metric_families(text) for s in family.samples}
    assert values[("vas_node_streams", ())] == 1
    assert not any(name == "vas_stream_viewers" for name, _ in values)
