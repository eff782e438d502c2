"""The container image, built here from the current tree by deploy/build-image.sh (podman,
a Debian base made by mmdebstrap) and run as a user would: `vas up` with the host's
network, driven over HTTP to a camera on the host that goes LIVE, then stopped."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import bearer
from tests.deploy.container import (
    TEST_IMAGE,
    build_image,
    podman,
    remove_container,
    remove_image,
)
from tests.e2e.processes import free_port

pytestmark = [pytest.mark.container, pytest.mark.slow]


@pytest.fixture(scope="module")
def image() -> Iterator[str]:
    """The image of this tree. Layers whose inputs did not change come from podman's cache
    (the base and the dependencies); the project's own layers are rebuilt when its files
    change, so the image always holds the code under test."""
    build_image(TEST_IMAGE)
    yield TEST_IMAGE
    remove_image(TEST_IMAGE)


def _inspect(target: str) -> dict:
    return json.loads(podman("inspect", target).stdout)[0]


def test_the_image_runs_vas_as_a_non_root_user_with_a_healthcheck(image):
    inspected = _inspect(image)
    config = inspected["Config"]
    assert config["Entrypoint"] == ["vas"]
    assert config["Cmd"] == ["up"]
    assert config["User"] == "10001:10001"
    assert "VAS_DATA_DIR=/var/lib/vas" in config["Env"]
    assert "/opt/vas/healthcheck.py" in " ".join(inspected["Healthcheck"]["Test"])

    usage = podman("run", "--rm", "--network", "none", image, "--help").stdout
    assert "{up,api,worker,media-node,detector}" in usage
    probe = podman("run", "--rm", "--network", "none", "--entrypoint", "python", image, "-c",
                   "import os, shutil; print(os.getuid(), os.access('/var/lib/vas', os.W_OK),"
                   " shutil.which('gcc'), shutil.which('apt-get') is not None)").stdout.split()
    # The user owns the data dir; no compiler came along from the builder stage.
    assert probe[:3] == ["10001", "True", "None"], probe


def _wait_ready(base: str, name: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = _inspect(name)["State"]
        assert state["Running"], f"container exited ({state['ExitCode']}):\n" + \
            podman("logs", name, check=False).stdout
        try:
            if httpx.get(f"{base}/v2/health/ready", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"not ready in {timeout} s:\n" + podman("logs", name, check=False).stdout)


def test_vas_up_in_the_container_streams_a_camera_of_the_host(image, start_camera):
    camera = start_camera(width=640, height=360, fps=15, gop=15)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    name = f"vas-test-{uuid.uuid4().hex[:10]}"
    secret = f"test-{uuid.uuid4().hex}"
    podman(
        "run", "--detach", "--name", name, "--network", "host",
        # Loopback only: the image listens on 0.0.0.0 by default.
        "--env", "VAS_HOST=127.0.0.1", "--env", f"VAS_PORT={port}",
        "--env", f"VAS_ADMIN_CLIENT_SECRET={secret}",
        image, "up",
    )
    try:
        _wait_ready(base, name)
        with httpx.Client(base_url=base, timeout=45) as http:
            token = http.post("/v2/auth/token",
                              json={"client_id": "admin", "client_secret": secret})
            assert token.status_code == 200, token.text
            admin = bearer(token.json()["access_token"])
            device = http.post("/api/v1/devices", json={"name": "Host camera",
                                                        "rtsp_url": camera.url})
            assert device.status_code == 201, device.text
            started = http.post(f"/api/v1/devices/{device.json()['id']}/start-stream")
            assert started.status_code == 200, started.text
            stream_id = started.json()["v2_stream_id"]
            detail = http.get(f"/v2/streams/{stream_id}", headers=admin).json()
            assert detail["state"] == "LIVE", detail
            video = detail["codec_config"]["video"]
            assert (video["codec"], video["width"], video["height"]) == ("H264", 640, 360)

        # The image's HEALTHCHECK passes on the running API, and every process of the
        # container runs as the image's user.
        assert podman("healthcheck", "run", name, check=False).returncode == 0
        users = podman("top", name, "user").stdout.split()[1:]
        assert len(users) >= 4 and set(users) == {"vas"}, users  # up, api, worker, node, redis

        # SIGTERM (podman stop, as an orchestrator does) stops VAS cleanly.
        podman("stop", "--time", "30", name, timeout=60)
        state = _inspect(name)["State"]
        logs = podman("logs", name, check=False).stdout
        assert state["ExitCode"] == 0, logs
        assert "VAS stopped." in logs
        assert logs.count(secret) == 0, "a secret given in the environment is never printed"
    finally:
        remove_container(name)
    assert podman("container", "exists", name, check=False).returncode == 1


def test_a_worker_in_the_container_is_healthy_while_its_metrics_answer(image):
    """`vas worker` with VAS_METRICS_PORT: the image's health check GETs its /metrics."""
    import redis

    from tests.conftest import REDIS_URL

    port = free_port()
    name = f"vas-test-{uuid.uuid4().hex[:10]}"
    namespace = f"vas-image-{uuid.uuid4().hex[:8]}"
    podman(
        "run", "--detach", "--name", name, "--network", "host",
        "--env", "VAS_HOST=127.0.0.1", "--env", f"VAS_METRICS_PORT={port}",
        "--env", f"REDIS_URL={REDIS_URL}", "--env", f"VAS_REDIS_NAMESPACE={namespace}",
        image, "worker",
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            state = _inspect(name)["State"]
            assert state["Running"], podman("logs", name, check=False).stdout
            try:
                if httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, podman("logs", name, check=False).stdout
            time.sleep(0.5)
        check = podman("healthcheck", "run", name, check=False)
        assert check.returncode == 0, check.stdout + check.stderr
        # It really asks: the same check pointed at a port nobody serves fails.
        wrong = podman("exec", "--env", f"VAS_METRICS_PORT={free_port()}", name,
                       "/opt/vas/bin/python", "/opt/vas/healthcheck.py", check=False)
        assert wrong.returncode == 1, wrong.stdout + wrong.stderr
        assert "/metrics" in wrong.stderr
    finally:
        remove_container(name)
        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=f"{namespace}:*"))
        if keys:
            client.delete(*keys)
        client.close()
