"""The CPU counters of jobs.metrics: the time the calling thread computes inside
`cpu_spent` is counted for its kind and role, time spent waiting is not, and every process
shows its role's counters from the start."""

from __future__ import annotations

import hashlib
import time

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from jobs.metrics import CpuCollector, add_cpu_seconds, cpu_spent


def _counters(role: str) -> dict[tuple[str, str], float]:
    registry = CollectorRegistry()
    registry.register(CpuCollector(role))
    text = generate_latest(registry).decode()
    return {(s.name, s.labels["role"]): s.value
            for f in text_string_to_metric_families(text) for s in f.samples}


def test_computing_counts_and_waiting_does_not():
    before = _counters("unit-a")
    assert before[("vas_transcoder_cpu_seconds_total", "unit-a")] == 0
    with cpu_spent("transcoder", "unit-a"):
        time.sleep(0.3)
    slept = _counters("unit-a")[("vas_transcoder_cpu_seconds_total", "unit-a")]
    with cpu_spent("transcoder", "unit-a"):
        end = time.thread_time() + 0.2
        data = b"x"
        while time.thread_time() < end:
            data = hashlib.sha256(data).digest()
    after = _counters("unit-a")
    assert slept < 0.1
    assert after[("vas_transcoder_cpu_seconds_total", "unit-a")] - slept >= 0.2
    assert after[("vas_detection_cpu_seconds_total", "unit-a")] == 0  # other kinds untouched


def test_unknown_kinds_are_refused():
    with pytest.raises(ValueError, match="unknown CPU kind"):
        add_cpu_seconds("encoder", "node", 1.0)
