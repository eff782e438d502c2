"""The scale drill's figures (benchmarks/scale_report.py, scale_sampler.py) computed from
samples: gaps by where a stream came back, p50/max, RTSP connections per camera from
/proc/net/tcp text, LIVE streams without a connection outside their fault, the timeline."""

from __future__ import annotations

import os
import socket
import time
from types import SimpleNamespace

import pytest

from benchmarks.scale_report import (
    Fault,
    gaps_between,
    max_connections,
    seconds,
    target,
    timeline,
    unserved,
    window,
)
from benchmarks.scale_sampler import (
    Point,
    Sampler,
    SamplerFailed,
    count_established,
    read_tcp_tables,
    samples,
    socket_holders,
)
from tests.e2e.processes import free_port

HEADER = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid\n"


def _row(local_port: int, remote_port: int, state: str) -> str:
    return (f"   0: 0100007F:{local_port:04X} 0100007F:{remote_port:04X} {state} "
            "00000000:00000000 00:00000000 00000000  1000\n")


def test_connections_are_counted_on_the_client_side_and_only_when_established() -> None:
    table = HEADER + "".join([
        _row(40001, 8554, "01"),  # an ingest of camera 8554
        _row(8554, 40001, "01"),  # the camera's own side of it: not another ingest
        _row(40002, 8554, "01"),  # a second ingest: doubled
        _row(40003, 8555, "06"),  # TIME_WAIT: gone
        _row(40004, 9000, "01"),  # not a camera
    ])
    assert count_established([table, HEADER], [8554, 8555, 8556]) == {
        8554: 2, 8555: 0, 8556: 0}


def _fault() -> Fault:
    fault = Fault("SIGKILL", "node-0", signalled=100.0, streams=["a", "b", "c", "d"], seats=2)
    fault.back = {"a": (108.0, "node-1"), "b": (112.0, "node-2"), "c": (130.0, "node-0")}
    fault.restart_began = 120.0
    return fault


def test_gaps_are_from_the_signal_and_grouped_by_where_the_stream_came_back() -> None:
    fault = _fault()
    assert fault.moved() == [8.0, 12.0]
    assert fault.returned() == [30.0]
    assert fault.returned_from_restart() == [10.0]
    assert fault.lost() == ["d"]


def test_seconds_gives_p50_max_and_each_value() -> None:
    assert seconds([3.0, 1.0, 2.0]) == "p50 2.00 s, max 3.00 s (each: 1.00, 2.00, 3.00)"
    assert seconds([4.5]) == "p50 4.50 s, max 4.50 s (each: 4.50)"
    assert seconds([]) == "none"
    assert target([2.0, 3.5], 3.0).startswith("NOT met")
    assert target([2.0, 3.0], 3.0).startswith("met")


def _point(t: float, connections: dict[str, int], states: dict[str, str]) -> Point:
    return Point(t=t, wall="00:00:00.00", load=1.0, connections=connections,
                 rows={sid: (state, "node-1") for sid, state in states.items()})


def test_a_live_stream_without_connection_counts_only_outside_its_fault() -> None:
    fault = _fault()
    points = [
        _point(90.0, {"a": 1, "e": 0}, {"a": "LIVE", "e": "INITIALIZING"}),  # not LIVE yet
        _point(105.0, {"a": 0, "d": 0}, {"a": "LIVE", "d": "LIVE"}),  # in the fault: excused
        _point(108.5, {"a": 0}, {"a": "LIVE"}),  # back at 108, grace 1 s: excused
        _point(115.0, {"a": 0, "e": 0}, {"a": "LIVE", "e": "LIVE"}),  # after: both count
        _point(200.0, {"d": 0}, {"d": "LIVE"}),  # never back: excused to the end
    ]
    assert unserved(points, [fault]) == [(115.0, "a"), (115.0, "e")]
    across = _point(99.9, {"a": 0}, {"a": "LIVE"})  # begun before the signal, read after it
    across.took = 0.3
    before = _point(99.0, {"a": 0}, {"a": "LIVE"})
    before.took = 0.3
    assert unserved([across, before], [fault]) == [(99.0, "a")]
    assert max_connections([*points, _point(120.0, {"a": 2}, {"a": "LIVE"})]) == {
        "a": 2, "e": 0, "d": 0}


def test_window_keeps_one_sample_a_step_and_the_timeline_one_row_each() -> None:
    points = [_point(100.0 + 0.5 * i, {"a": 1}, {"a": "LIVE"}) for i in range(20)]
    chosen = window(points, 101.0, 106.0, step=2.0)
    assert [p.t for p in chosen] == [101.0, 103.0, 105.0]
    late = [_point(t, {}, {}) for t in (100.0, 101.1, 101.95, 103.0)]  # 1.1 s then 0.85 s
    assert [p.t for p in window(late, 100.0, 104.0, step=0)] == [100.0, 101.1, 101.95, 103.0]
    assert [p.t for p in window(late, 100.0, 104.0, step=1.0)] == [100.0, 101.1, 103.0]
    assert gaps_between(points) == 0.5
    chosen[0].nodes = {"node-1": 1.0, "node-2": None}
    chosen[0].queues = {"default": 0.0, "media-node": 2.0}
    lines = timeline(chosen, since=102.0, names=["node-1", "node-2"])
    assert len(lines) == 2 + 3
    cells = [c.strip() for c in lines[2].strip("|").split("|")]
    assert cells[0] == "-1.0"
    assert cells[5:7] == ["1", "-"]  # the node's own gauge; - when it did not answer
    assert cells[7] == "1:1 2:0"  # LIVE rows per node
    assert cells[8] == "default=0 media-node=2"


def test_samples_reads_labels_and_values() -> None:
    text = ('# TYPE vas_queue_messages gauge\nvas_queue_messages{queue="default"} 3.0\n'
            "# TYPE vas_node_streams gauge\nvas_node_streams 12.0\n")
    assert samples(text) == [("vas_queue_messages", {"queue": "default"}, 3.0),
                             ("vas_node_streams", {}, 12.0)]


def test_a_sampler_that_fails_is_raised_in_the_drill_not_lost() -> None:
    # A cluster whose database refuses connections: the sampler's thread ends with it.
    cluster = SimpleNamespace(database_url=f"postgresql://127.0.0.1:{free_port()}/none",
                              members=[], nodes=list)
    sampler = Sampler(cluster, f"http://127.0.0.1:{free_port()}", {}, period=0.1)  # type: ignore[arg-type]
    sampler.start()
    for _ in range(100):
        if sampler.error is not None:
            break
        time.sleep(0.1)
    with pytest.raises(SamplerFailed, match="the sampler failed"):
        sampler.check()
    with pytest.raises(SamplerFailed):
        sampler.stop()


def test_a_doubled_camera_names_the_processes_holding_its_connections() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port)), \
                socket.create_connection(("127.0.0.1", port)):
            inodes: dict[int, list[str]] = {}
            assert count_established(read_tcp_tables(), [port], inodes) == {port: 2}
            holders = socket_holders(inodes[port])
    assert [h.split()[0] for h in holders] == [str(os.getpid())]
