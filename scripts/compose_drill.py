"""Run deploy/compose.yaml for real with podman-compose and print what happens.

    .venv/bin/python scripts/compose_drill.py

Builds the images (deploy/build-image.sh, then PostgreSQL and Redis from Debian's packages),
brings the whole file up on free loopback ports with fresh secrets, registers a test camera
of this host through one API and starts it, sees it LIVE through the other API with both
media nodes registered, stops everything (`podman-compose down -v`) and checks that no
container is left. Needs root, podman, runc, mmdebstrap, podman-compose (make install) and
the RTSP test camera's packages (scripts/install-test-deps.sh). docs/deployment.md shows
its output.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.camera import CameraProfile, TestCamera  # noqa: E402
from tests.e2e.processes import free_port  # noqa: E402

CACHE = Path(os.environ.get("VAS_BUILD_CACHE", "/var/cache/vas-build"))
PROJECT = "vasdrill"
COMPOSE = ROOT / "deploy" / "compose.yaml"
BEGAN = time.monotonic()


def say(message: str) -> None:
    print(f"[{time.monotonic() - BEGAN:6.1f} s] {message}", flush=True)


def run(*command: str, env: dict[str, str], quiet: bool = False) -> str:
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        raise SystemExit(f"failed: {' '.join(command)}\n{result.stdout}\n{result.stderr}")
    if not quiet:
        print(result.stdout.rstrip(), flush=True)
    return result.stdout


def wait_ready(url: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/v2/health/ready", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise SystemExit(f"{url} not ready in {timeout} s")


def _node_of_container(env: dict[str, str], container: str) -> str:
    logs = subprocess.run(["podman", "logs", container], env=env, capture_output=True,
                          text=True, timeout=60)
    for line in (logs.stdout + logs.stderr).splitlines():
        if "media node " in line and " registered" in line:
            return line.split("media node ", 1)[1].split()[0]
    raise SystemExit(f"no node id in the logs of {container}")


def scale_in(env: dict[str, str], admin: dict[str, str], api1: str, api2: str,
             stream_id: str, nodes: list[dict]) -> None:
    """Stop the media node that owns the stream as an orchestrator does (SIGTERM, then a
    grace period) and watch the stream come back LIVE on the other node."""
    owner = next(n["node_id"] for n in nodes if n["streams"] == 1)
    names = [f"{PROJECT}_media-node-{i}_1" for i in (1, 2)]
    containers = {_node_of_container(env, name): name for name in names}
    container = containers[owner]
    began = time.monotonic()
    run("podman", "stop", "--time", "60", container, env=env, quiet=True)
    stopped = time.monotonic() - began
    code = run("podman", "inspect", "--format", "{{.State.ExitCode}}", container, env=env,
               quiet=True).strip()
    say(f"podman stop {container} (SIGTERM, 60 s grace): exited {code} after {stopped:.2f} s")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        state = httpx.get(f"{api2}/v2/streams/{stream_id}", headers=admin).json()["state"]
        alive = httpx.get(f"{api1}/v2/nodes", headers=admin).json()["nodes"]
        if state == "LIVE" and [n for n in alive if n["node_id"] != owner and n["streams"] == 1]:
            say(f"stream LIVE again on the other node {time.monotonic() - began:.2f} s after "
                f"SIGTERM; nodes now: {[(n['node_id'], n['streams']) for n in alive]}")
            return
        time.sleep(0.25)
    raise SystemExit("the stream did not come back on the other node within 60 s")


def main() -> int:
    podman_compose = shutil.which("podman-compose") or str(Path(sys.executable).parent /
                                                          "podman-compose")
    env = dict(os.environ, VAS_BUILD_CACHE=str(CACHE),
               CONTAINERS_CONF=str(CACHE / "containers.conf"))
    say("building the images")
    run("bash", str(ROOT / "deploy" / "build-image.sh"), "localhost/vas:latest", env=env,
        quiet=True)
    for name, tag in (("postgres", "localhost/vas-postgres:15"),
                      ("redis", "localhost/vas-redis:7")):
        run("podman", "--runtime", "runc", "build", "--network", "host", "--quiet",
            "--file", str(ROOT / "deploy" / "compose" / f"{name}.Containerfile"),
            "--tag", tag, str(ROOT / "deploy" / "compose"), env=env, quiet=True)
    run("podman", "images", "--format", "{{.Repository}}:{{.Tag}} {{.Size}}",
        "--filter", "reference=localhost/vas*", env=env)

    ports = {name: str(free_port()) for name in
             ("VAS_POSTGRES_PORT", "VAS_REDIS_PORT", "VAS_API_PORT_1", "VAS_API_PORT_2")}
    admin_secret = secrets.token_urlsafe(32)
    values = {**ports, "VAS_BIND": "127.0.0.1", "VAS_ADMIN_CLIENT_SECRET": admin_secret,
              **{k: secrets.token_urlsafe(32) for k in (
                  "JWT_SECRET_KEY", "VAS_CREDENTIALS_KEY", "POSTGRES_PASSWORD", "REDIS_PASSWORD")}}
    camera = TestCamera(CameraProfile(width=640, height=360, fps=15, gop=15))
    with tempfile.TemporaryDirectory() as tmp:
        env_file = Path(tmp) / "drill.env"
        env_file.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
        compose = [podman_compose, "--project-name", PROJECT, "--env-file", str(env_file),
                   "--file", str(COMPOSE)]
        try:
            say(f"podman-compose up -d (ports {ports})")
            run(*compose, "up", "--detach", env=env, quiet=True)
            run("podman", "ps", "--filter", f"label=io.podman.compose.project={PROJECT}",
                "--format", "{{.Names}}\t{{.Status}}\t{{.Command}}", env=env)
            api1 = f"http://127.0.0.1:{ports['VAS_API_PORT_1']}"
            api2 = f"http://127.0.0.1:{ports['VAS_API_PORT_2']}"
            for url in (api1, api2):
                wait_ready(url)
                checks = httpx.get(f"{url}/v2/health/ready").json()["checks"]
                say(f"{url}/v2/health/ready: {checks}")
            camera.start()
            token = httpx.post(f"{api1}/v2/auth/token", json={
                "client_id": "admin", "client_secret": admin_secret}).json()["access_token"]
            admin = {"Authorization": f"Bearer {token}"}
            device = httpx.post(f"{api2}/api/v1/devices", json={
                "name": "Drill camera", "rtsp_url": camera.url}).json()
            say(f"device {device['id']} created through api-2")
            began = time.monotonic()
            started = httpx.post(f"{api1}/api/v1/devices/{device['id']}/start-stream",
                                 timeout=45).json()
            say(f"start-stream through api-1 answered in {time.monotonic() - began:.2f} s: "
                f"{started['stream']}")
            stream = httpx.get(f"{api2}/v2/streams/{started['v2_stream_id']}", headers=admin).json()
            say(f"through api-2: stream {stream['id']} is {stream['state']}, "
                f"video {stream['codec_config']['video']['codec']} "
                f"{stream['codec_config']['video']['width']}x"
                f"{stream['codec_config']['video']['height']}")
            time.sleep(2.5)  # one heartbeat: the nodes report their load
            nodes = httpx.get(f"{api1}/v2/nodes", headers=admin).json()["nodes"]
            say(f"media nodes (id, streams, ping ms): "
                f"{[(n['node_id'], n['streams'], n['rtt_ms']) for n in nodes]}")
            assert stream["state"] == "LIVE" and len(nodes) == 2
            scale_in(env, admin, api1, api2, started["v2_stream_id"], nodes)
        finally:
            camera.stop()
            say("podman-compose down -v")
            subprocess.run([*compose, "down", "--volumes", "--timeout", "30"], env=env,
                           capture_output=True, text=True, timeout=300)
            left = run("podman", "ps", "--all", "--quiet", "--filter",
                       f"label=io.podman.compose.project={PROJECT}", env=env, quiet=True)
            say(f"containers left: {len(left.split())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
