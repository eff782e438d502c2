"""deploy/healthcheck.py: what the image's health check asks for each role, and its answer
from a real HTTP server on loopback."""

from __future__ import annotations

import http.server
import importlib.util
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from tests.e2e.processes import free_port

HEALTHCHECK = Path(__file__).resolve().parents[2] / "deploy" / "healthcheck.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("vas_healthcheck", HEALTHCHECK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


healthcheck = _load()
IMAGE_ENV = {"VAS_HOST": "0.0.0.0", "VAS_PORT": "8000"}  # the Dockerfile's ENV


@pytest.mark.parametrize("role", ["up", "api"])
def test_the_api_is_asked_for_its_liveness(role: str) -> None:
    assert healthcheck.probe_url(role, IMAGE_ENV) == "http://127.0.0.1:8000/v2/health/live"
    assert healthcheck.probe_url(role, {**IMAGE_ENV, "VAS_METRICS_PORT": "9400"}) == \
        "http://127.0.0.1:8000/v2/health/live"


@pytest.mark.parametrize("role", ["worker", "detector", "media-node"])
def test_workers_and_nodes_are_asked_for_their_metrics_when_they_serve_them(role: str) -> None:
    assert healthcheck.probe_url(role, {**IMAGE_ENV, "VAS_METRICS_PORT": "9400"}) == \
        "http://127.0.0.1:9400/metrics"
    # The metrics server listens on the first address of VAS_HOST (jobs/process.py).
    assert healthcheck.probe_url(role, {"VAS_HOST": "10.1.2.3,::1", "VAS_METRICS_PORT": "9400"}) \
        == "http://10.1.2.3:9400/metrics"
    assert healthcheck.probe_url(role, {"VAS_HOST": "::1", "VAS_METRICS_PORT": "9400"}) == \
        "http://[::1]:9400/metrics"


@pytest.mark.parametrize("role", ["worker", "detector", "media-node"])
@pytest.mark.parametrize("port", [None, "", "0"])
def test_without_a_metrics_port_the_check_is_that_the_process_runs(role: str,
                                                                   port: str | None) -> None:
    env = IMAGE_ENV if port is None else {**IMAGE_ENV, "VAS_METRICS_PORT": port}
    assert healthcheck.probe_url(role, env) is None
    assert healthcheck.main(role, env) == 0


def test_an_unknown_command_is_not_probed() -> None:
    assert healthcheck.probe_url("--help", {**IMAGE_ENV, "VAS_METRICS_PORT": "9400"}) is None


class _Metrics(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/metrics" else 404)
        self.end_headers()
        self.wfile.write(b"vas_node_streams 0\n")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def metrics_port() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Metrics)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_a_worker_is_healthy_while_its_metrics_answer(metrics_port: int) -> None:
    env = {**IMAGE_ENV, "VAS_METRICS_PORT": str(metrics_port)}
    assert healthcheck.main("worker", env) == 0
    assert healthcheck.main("worker", {**IMAGE_ENV, "VAS_METRICS_PORT": str(free_port())}) == 1
