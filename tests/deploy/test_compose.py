"""deploy/compose.yaml as podman-compose resolves it (`config`: merges, interpolation), and
the settings each VAS service gets. scripts/compose_drill.py runs the file for real (its
output is in docs/deployment.md); this test keeps the file honest on every run."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from api.cli import CHILDREN
from core.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "deploy" / "compose.yaml"
EXAMPLE_ENV = ROOT / "deploy" / "compose.env.example"
VAS_SERVICES = {"api-1", "api-2", "worker", "media-node-1", "media-node-2"}


def _podman_compose(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("podman-compose") or str(Path(sys.executable).parent / "podman-compose")
    assert Path(tool).exists(), "podman-compose is a dev dependency: make install"
    return subprocess.run([tool, *args, "--file", str(COMPOSE), "config"], capture_output=True,
                          text=True, timeout=60, env=env)


@pytest.fixture(scope="module")
def services():
    result = _podman_compose("--env-file", str(EXAMPLE_ENV))
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)["services"]


def test_the_file_has_every_service_of_a_distributed_vas(services):
    assert set(services) == VAS_SERVICES | {"postgres", "redis"}
    for name in VAS_SERVICES:
        service = services[name]
        assert service["command"][0] in CHILDREN
        assert service["network_mode"] == "host"
        assert service["volumes"] == ["vas-data:/var/lib/vas"], "one data dir for all roles"
        assert service["image"] == services["api-1"]["image"]
    assert [services[n]["command"] for n in sorted(VAS_SERVICES)] == \
        [["api"], ["api"], ["media-node"], ["media-node"], ["worker"]]


def test_each_vas_service_gets_a_complete_production_configuration(services):
    ports = set()
    for name in VAS_SERVICES:
        settings = load_settings({k: str(v) for k, v in services[name]["environment"].items()})
        assert settings.server.production and settings.database.is_postgres
        assert settings.redis.url is not None
        if name.startswith("api"):
            ports.add(settings.server.port)
    assert len(ports) == 2, "the two APIs share the host's network: two ports"
    ranges = [load_settings({k: str(v) for k, v in services[n]["environment"].items()}).media
              for n in ("media-node-1", "media-node-2")]
    assert ranges[0].port_max < ranges[1].port_min, "media nodes on one host: disjoint UDP ranges"


def test_secrets_have_no_defaults():
    """Without the secrets in the environment, compose refuses to start anything."""
    env = {k: v for k, v in os.environ.items()
           if k not in {"JWT_SECRET_KEY", "VAS_CREDENTIALS_KEY", "VAS_ADMIN_CLIENT_SECRET",
                        "POSTGRES_PASSWORD", "REDIS_PASSWORD"}}
    result = _podman_compose(env=env)
    assert result.returncode != 0
    assert "is missing a value: set " in result.stderr
