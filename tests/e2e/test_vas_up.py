"""`vas up` started exactly as a user would, driven over HTTP, stopped with Ctrl-C."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import httpx
import pytest

from tests.conftest import REDIS_URL
from tests.e2e.processes import VasProcess, alive, clean_env, descendants, free_port

pytestmark = pytest.mark.slow


def _secret(output: str) -> str | None:
    match = re.search(r"VAS_ADMIN_CLIENT_SECRET=(\S+)", output)
    return match[1] if match else None


def _admin_password(output: str) -> str | None:
    match = re.search(r"VAS_ADMIN_PASSWORD=(\S+)", output)
    return match[1] if match else None


def _sign_in(base: str, password: str) -> int:
    return httpx.post(f"{base}/api/v1/auth/login", timeout=10, json={
        "email": "admin@vas.local", "password": password}).status_code


def _redis_pid(output: str) -> int | None:
    match = re.search(r"embedded Redis listening on (\S+)", output)
    if not match:
        return None
    return int((Path(match[1]).parent / "redis.pid").read_text())


def _drive(base: str, secret: str) -> None:
    with httpx.Client(base_url=base, timeout=10) as http:
        token = http.post("/v2/auth/token",
                          json={"client_id": "admin", "client_secret": secret}).json()
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        created = http.post("/v2/auth/clients", headers=headers, json={
            "client_id": f"ruth-{uuid.uuid4().hex[:6]}", "scopes": ["streams:read"]})
        assert created.status_code == 201
        reader = http.post("/v2/auth/token", json={
            "client_id": created.json()["client_id"],
            "client_secret": created.json()["client_secret"]}).json()["access_token"]
        device = http.post("/api/v1/devices", json={
            "name": "Gate", "rtsp_url": "rtsp://viewer:pw123@192.0.2.10/main"})
        assert device.status_code == 201
        assert "pw123" not in device.text
        assert http.get("/api/v1/devices").json()[0]["id"] == device.json()["id"]
        streams = http.get("/v2/streams", headers={"Authorization": f"Bearer {reader}"})
        assert streams.json()["pagination"]["total"] == 0
        nodes = http.get("/v2/nodes", headers=headers).json()["nodes"]
        assert len(nodes) == 1 and nodes[0]["rtt_ms"] is not None, nodes
        assert http.get("/v2/streams").status_code == 401


@pytest.mark.parametrize("services", ["embedded", "postgres+redis"])
def test_vas_up_serves_and_ctrl_c_stops_everything(tmp_path, services, request):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = clean_env(VAS_PORT=str(port), VAS_DATA_DIR=str(tmp_path / "var"))
    if services != "embedded":
        env.update(DATABASE_URL=request.getfixturevalue("fresh_postgres_url"), REDIS_URL=REDIS_URL,
                   VAS_REDIS_NAMESPACE=f"vas-e2e-{uuid.uuid4().hex[:8]}")

    first = VasProcess("up", env, tmp_path)
    try:
        first.wait_ready(base)
        secret = _secret(first.output)
        assert secret, first.output
        _drive(base, secret)
        password = _admin_password(first.output)
        assert password, first.output
        assert _sign_in(base, password) == 200
        tree = descendants(first.proc.pid)
        redis_pid = _redis_pid(first.output)
        assert (redis_pid is not None) == (services == "embedded")
        assert len(tree) >= 3
    finally:
        code = first.interrupt()
    assert code == 0, first.output
    assert not [pid for pid in tree if alive(pid)], "children left running"
    if redis_pid is not None:
        assert not alive(redis_pid), "embedded redis-server left running"
    assert first.output.count(secret) == 1, "the secret is printed once, in the banner only"
    assert first.output.count(password) == 1, "so is the admin user's password"
    assert "pw123" not in first.output

    # A second start on the same data keeps the admin client and prints no secret.
    second = VasProcess("up", env, tmp_path)
    try:
        second.wait_ready(base)
        assert _secret(second.output) is None
        assert _admin_password(second.output) is None
        assert _sign_in(base, password) == 200
        token = httpx.post(f"{base}/v2/auth/token",
                           json={"client_id": "admin", "client_secret": secret})
        assert token.status_code == 200
        assert len(httpx.get(f"{base}/api/v1/devices").json()) == 1
    finally:
        assert second.interrupt() == 0, second.output


def test_production_without_secrets_is_a_clear_startup_error(tmp_path):
    proc = VasProcess("up", clean_env(VAS_ENV="production", VAS_DATA_DIR=str(tmp_path)), tmp_path)
    assert proc.proc.wait(timeout=30) == 2
    proc._reader.join(timeout=5)
    assert "VAS_ENV=production needs JWT_SECRET_KEY" in proc.output
    assert list(tmp_path.iterdir()) == []
