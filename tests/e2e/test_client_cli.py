"""`python -m vas_client clip|snapshot` against `vas up` with a real camera: the work is
shown while VAS does it, and the files arrive and decode."""

from __future__ import annotations

import subprocess
import sys
import time

import av
import httpx
import pytest

from tests.e2e.processes import VasProcess, clean_env, free_port

pytestmark = pytest.mark.slow
SECRET = "cli-test-secret"


def test_clip_and_snapshot_from_the_command_line(tmp_path, start_camera):
    camera = start_camera(fps=15, gop=15)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = clean_env(VAS_PORT=str(port), VAS_DATA_DIR=str(tmp_path / "var"),
                    VAS_ADMIN_CLIENT_SECRET=SECRET)
    vas = VasProcess("up", env, tmp_path)
    try:
        vas.wait_ready(base)
        device = httpx.post(f"{base}/api/v1/devices",
                            json={"name": "cli", "rtsp_url": camera.url}).json()["id"]
        stream = httpx.post(f"{base}/api/v1/devices/{device}/start-stream",
                            timeout=40).json()["v2_stream_id"]
        token = httpx.post(f"{base}/v2/auth/token", json={
            "client_id": "admin", "client_secret": SECRET}).json()["access_token"]
        for _ in range(100):  # the second before the clip's centre is recorded
            health = httpx.get(f"{base}/v2/streams/{stream}/health",
                               headers={"Authorization": f"Bearer {token}"}).json()
            if health["uptime_seconds"] >= 2:
                break
            time.sleep(0.1)
        client_env = {**env, "VAS_URL": base, "VAS_CLIENT_ID": "admin",
                      "VAS_CLIENT_SECRET": SECRET}
        clip = subprocess.run(
            [sys.executable, "-m", "vas_client", "clip", stream, "--before", "1", "--after", "3",
             "--out", str(tmp_path / "clip.mp4")],
            env=client_env, capture_output=True, text=True, timeout=90)
        assert clip.returncode == 0, clip.stderr
        assert "recording the clip" in clip.stderr and "ready after" in clip.stderr
        assert "saved" in clip.stderr
        with av.open(str(tmp_path / "clip.mp4")) as container:
            frames = list(container.decode(video=0))
        # 1 s before and 3 s after at 15 fps; the cut starts at the keyframe before (the
        # camera's GOP is 1 s), so 4-5 s of frames, both ends included.
        assert 3 * 15 <= len(frames) <= 5 * 15 + 1
        snap = subprocess.run(
            [sys.executable, "-m", "vas_client", "snapshot", stream, "--out",
             str(tmp_path / "snap.jpg")],
            env=client_env, capture_output=True, text=True, timeout=60)
        assert snap.returncode == 0, snap.stderr
        assert (tmp_path / "snap.jpg").read_bytes()[:2] == b"\xff\xd8"
        missing = subprocess.run(
            [sys.executable, "-m", "vas_client", "snapshot", "not-a-stream"],
            env=client_env, capture_output=True, text=True, timeout=60)
        assert missing.returncode == 1 and "400" in missing.stderr
    finally:
        assert vas.interrupt() == 0
