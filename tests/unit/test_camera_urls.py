"""core.camera_urls: what the camera URL guard refuses, and the address it pins."""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path
from typing import Any

import pytest

from core.camera_urls import (
    CameraPolicy,
    CameraUrlRefused,
    check_camera_url,
    parse_networks,
    policy_for,
)
from core.errors import ConfigError, InvalidInput
from core.settings import load_settings

CAMERA_NETS = (ipaddress.ip_network("10.20.0.0/16"), ipaddress.ip_network("192.168.1.0/24"))
PRODUCTION = CameraPolicy(networks=CAMERA_NETS, any_network=False, allow_loopback=False,
                          service_ports=frozenset({8000, 6379, 5432}))
DEVELOPMENT = CameraPolicy(service_ports=frozenset({8000, 6379}))


@pytest.mark.parametrize("url, reason", [
    ("http://10.20.0.5/stream", "rtsp:// or rtsps://"),
    ("file:///etc/passwd", "rtsp:// or rtsps://"),
    ("rtmp://10.20.0.5/live", "rtsp:// or rtsps://"),
    ("rtsp:///nohost", "no host"),
    ("rtsp://169.254.169.254/latest/meta-data", "link-local"),
    ("rtsp://[fe80::1]/s", "link-local"),
    ("rtsp://[::ffff:169.254.169.254]/s", "link-local"),
    ("rtsp://0.0.0.0/s", "unspecified"),
    ("rtsp://[::]/s", "unspecified"),
    ("rtsp://224.0.0.251/s", "multicast"),
    ("rtsp://[ff02::1]/s", "multicast"),
    ("rtsp://255.255.255.255/s", "broadcast"),
    ("rtsp://240.0.0.1/s", "reserved"),
    ("rtsp://10.20.0.5:6379/s", "own ports"),
    ("rtsp://10.20.0.5:5432/s", "own ports"),
    ("rtsp://10.20.0.5:8000/s", "own ports"),
    ("rtsp://127.0.0.1:8554/cam", "loopback"),
    ("rtsp://localhost:8554/cam", "loopback"),
    ("rtsp://[::1]:8554/cam", "loopback"),
    ("rtsp://10.30.0.5/s", "outside VAS_CAMERA_NETWORKS"),
    ("rtsp://8.8.8.8/s", "outside VAS_CAMERA_NETWORKS"),
    ("rtsp://camera.invalid/s", "does not resolve"),
])
def test_production_refusals_name_their_reason(url: str, reason: str) -> None:
    with pytest.raises(CameraUrlRefused, match=reason) as refused:
        check_camera_url(url, PRODUCTION)
    assert isinstance(refused.value, InvalidInput)  # a 400 in both API families


@pytest.mark.parametrize("url", ["rtsp://169.254.169.254/", "rtsp://224.0.0.1/",
                                 "rtsp://0.0.0.0/", "rtsp://127.0.0.1:6379/"])
def test_always_refused_even_where_any_network_is_allowed(url: str) -> None:
    with pytest.raises(CameraUrlRefused):
        check_camera_url(url, DEVELOPMENT)


def test_camera_networks_and_development_loopback_are_allowed() -> None:
    pinned = check_camera_url("rtsp://admin@10.20.3.4:8554/live?x=1", PRODUCTION)
    assert pinned.url == "rtsp://admin@10.20.3.4:8554/live?x=1"
    assert check_camera_url("rtsps://192.168.1.9/s", PRODUCTION).port == 322
    assert check_camera_url("rtsp://127.0.0.1:8554/cam", DEVELOPMENT).address == "127.0.0.1"
    listed = CameraPolicy(networks=(ipaddress.ip_network("127.0.0.0/8"),), any_network=False,
                          allow_loopback=False)
    assert check_camera_url("rtsp://127.0.0.1:8554/cam", listed).port == 8554


def test_the_host_is_resolved_once_and_the_url_pinned_to_that_address(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """DNS rebinding: the first answer is checked and pinned; a later answer (the metadata
    address) is never asked for, because the URL handed on names the IP."""
    answers = iter(["10.20.0.7", "169.254.169.254"])
    calls: list[str] = []

    def rebinding_dns(host: str, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        calls.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers), port))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding_dns)
    pinned = check_camera_url("rtsp://user@cam.example:554/live", PRODUCTION)
    assert calls == ["cam.example"]
    assert pinned.url == "rtsp://user@10.20.0.7:554/live"
    assert pinned.host == "cam.example" and pinned.address == "10.20.0.7"
    # What ingest opens (the pinned URL) needs no DNS at all.
    assert check_camera_url(pinned.url, PRODUCTION).url == pinned.url
    assert calls == ["cam.example"]


def test_networks_setting_parses_cidrs_or_any() -> None:
    assert parse_networks("any") == ((), True)
    assert parse_networks(" 10.0.0.0/8, 192.168.1.7/24 ")[0] == (
        ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("192.168.1.0/24"))
    with pytest.raises(ConfigError, match="VAS_CAMERA_NETWORKS"):
        parse_networks("10.0.0.0/8,cameras")


PRODUCTION_ENV = {"VAS_ENV": "production", "JWT_SECRET_KEY": "k" * 40,
                  "VAS_CREDENTIALS_KEY": "c" * 40, "DATABASE_URL": "postgresql://db:6432/vas",
                  "REDIS_URL": "redis://cache:6380/0", "VAS_CAMERA_NETWORKS": "10.20.0.0/16"}


def test_production_needs_camera_networks_or_any_on_purpose(tmp_path: Path) -> None:
    env = {**PRODUCTION_ENV, "VAS_DATA_DIR": str(tmp_path)}
    del env["VAS_CAMERA_NETWORKS"]
    with pytest.raises(ConfigError, match="needs VAS_CAMERA_NETWORKS"):
        load_settings(env)
    assert load_settings({**env, "VAS_CAMERA_NETWORKS": "any"}).cameras.any_network
    development = load_settings({"VAS_DATA_DIR": str(tmp_path)})
    assert development.cameras.any_network and development.cameras.networks == ()


def test_production_policy_refuses_loopback_and_the_services_own_ports(tmp_path: Path) -> None:
    settings = load_settings({**PRODUCTION_ENV, "VAS_DATA_DIR": str(tmp_path)})
    policy = policy_for(settings)
    assert policy.service_ports == {8000, 6432, 6380}
    assert not policy.allow_loopback and not policy.any_network


def test_open_v1_routes_on_a_lan_address_refuse_to_start_in_production(tmp_path: Path) -> None:
    env = {**PRODUCTION_ENV, "VAS_DATA_DIR": str(tmp_path), "VAS_HOST": "0.0.0.0"}
    with pytest.raises(ConfigError, match="VAS_V1_AUTH=required"):
        load_settings(env)
    with pytest.raises(ConfigError, match="VAS_V1_AUTH=required"):
        load_settings({**env, "VAS_HOST": "127.0.0.1,10.20.0.2"})
    assert load_settings({**env, "VAS_V1_AUTH": "required"}).auth.v1_auth_required
    assert load_settings({**env, "VAS_V1_OPEN_ON_LAN": "true"}).server.host == "0.0.0.0"
    assert load_settings({**env, "VAS_HOST": "127.0.0.1,::1"}).server.hosts == ["127.0.0.1",
                                                                                "::1"]
