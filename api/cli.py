"""The `vas` command: `up` (everything, embedded default), `api`, `worker`, `media-node`,
`detector` (a worker on the `detect` queue only)."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from types import FrameType
from typing import TYPE_CHECKING

from core.clients import admin_banner, ensure_admin
from core.db import close_database, open_database
from core.errors import ConfigError
from core.logs import setup_logging
from core.settings import Settings, get_settings
from core.users import admin_user_banner, ensure_admin_user
from jobs.embedded_redis import EmbeddedRedis

if TYPE_CHECKING:
    from litestar import Litestar

logger = logging.getLogger("vas")
CHILDREN = ("api", "worker", "media-node")


def _settings() -> Settings:
    try:
        return get_settings()
    except ConfigError as exc:
        print(f"vas: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def _need_redis(settings: Settings) -> None:
    if settings.redis.url is None:
        print("vas: REDIS_URL is not set (only `vas up` starts an embedded Redis)",
              file=sys.stderr)
        raise SystemExit(2)


def bind_sockets(hosts: list[str], port: int) -> list[socket.socket]:
    """One listening TCP socket per address."""
    sockets = []
    for host in hosts:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        # proto must say TCP: asyncio sets TCP_NODELAY only on sockets that do, and without
        # it a keep-alive client waits ~40 ms (delayed ACK) for every response body.
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sockets.append(sock)
    return sockets


def cmd_api(settings: Settings) -> None:
    """uvicorn on every address of VAS_HOST (comma-separated), one port; with
    VAS_API_WORKERS > 1, that many processes share the listening sockets."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    _need_redis(settings)
    workers = settings.server.api_workers
    config = uvicorn.Config(
        "api.app:app_from_env" if workers == 1 else "api.cli:worker_app", factory=True,
        port=settings.server.port, log_config=None, access_log=False, workers=workers,
        # The supervisor restarts a worker that does not answer its ping in time: give a
        # worker starting on a busy host (imports, app startup) room.
        timeout_worker_healthcheck=30,
    )
    sockets = bind_sockets(settings.server.hosts, settings.server.port)
    if workers == 1:
        asyncio.run(uvicorn.Server(config).serve(sockets=sockets))
        return
    # Migrate and create the admins once, before the workers (whose startup then finds
    # nothing to do) instead of in N processes at once.
    asyncio.run(_bootstrap(settings))
    Multiprocess(config, sockets=sockets).run()


def worker_app() -> Litestar:
    """The app of one API worker process (spawned, so its logging is set up here)."""
    from api.app import create_app

    setup_logging("api")
    return create_app()


def cmd_worker(settings: Settings) -> None:
    from jobs.worker import run_worker

    _need_redis(settings)
    asyncio.run(run_worker(settings))


def cmd_detector(settings: Settings) -> None:
    from jobs.broker import DETECT_QUEUE
    from jobs.worker import run_worker

    _need_redis(settings)
    asyncio.run(run_worker(settings, (DETECT_QUEUE,)))


def cmd_media_node(settings: Settings) -> None:
    from jobs.media_node import run_media_node

    _need_redis(settings)
    asyncio.run(run_media_node(settings))


async def _bootstrap(settings: Settings) -> None:
    engine = await open_database(settings.database)
    try:
        secret = await ensure_admin(settings.auth)
        if secret is not None:
            print(admin_banner(settings.auth.admin_client_id, secret), flush=True)
        password = await ensure_admin_user(settings.auth)
        if password is not None:
            print(admin_user_banner(settings.auth.admin_email, password), flush=True)
    finally:
        await close_database(engine)


def _stop_children(children: dict[str, subprocess.Popen[bytes]], grace_s: float = 10.0) -> None:
    """SIGTERM every child we started, then SIGKILL whatever outlives the grace period."""
    for proc in children.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for name, proc in children.items():
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            logger.warning("%s (pid %d) did not stop in time; killing it", name, proc.pid)
            proc.kill()
            proc.wait()


def _child_env(env: dict[str, str], name: str, settings: Settings) -> dict[str, str]:
    """One machine, one VAS_METRICS_PORT: the media node serves its metrics there and the
    worker on the next port (the API serves /metrics on its own port)."""
    port = settings.server.metrics_port
    if port is None:
        return env
    if name == "api":
        return {k: v for k, v in env.items() if k != "VAS_METRICS_PORT"}
    return {**env, "VAS_METRICS_PORT": str(port + 1 if name == "worker" else port)}


def cmd_up(settings: Settings) -> int:
    """API, worker and media node in one process tree; Ctrl-C stops them all."""
    stopping = False

    def on_signal(signum: int, _: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    env = dict(os.environ, VAS_DATA_DIR=str(settings.server.data_dir))
    embedded: EmbeddedRedis | None = None
    children: dict[str, subprocess.Popen[bytes]] = {}
    try:
        if settings.redis.url is None:
            embedded = EmbeddedRedis(settings.server.data_dir)
            env["REDIS_URL"] = embedded.start()
            settings = dataclasses.replace(
                settings, redis=dataclasses.replace(settings.redis, url=env["REDIS_URL"])
            )
        try:
            asyncio.run(_bootstrap(settings))
        except ConfigError as exc:
            print(f"vas: configuration error: {exc}", file=sys.stderr)
            return 2
        for name in CHILDREN:
            children[name] = subprocess.Popen([sys.executable, "-m", "api.cli", name],
                                              env=_child_env(env, name, settings))
        url = f"http://{settings.server.hosts[0]}:{settings.server.port}"
        db = "PostgreSQL" if settings.database.is_postgres else "SQLite"
        print(f"VAS is starting at {url} ({db}, "
              f"{'embedded Redis' if embedded else 'Redis at REDIS_URL'}); "
              f"API docs at {url}/schema; Ctrl-C stops everything.", flush=True)
        while not stopping:
            exited = [n for n, p in children.items() if p.poll() is not None]
            if exited:
                logger.error("%s exited (code %s); stopping VAS", exited[0],
                             children[exited[0]].returncode)
                return 1
            time.sleep(0.2)
        return 0
    finally:
        _stop_children(children)
        if embedded is not None:
            embedded.stop()
        print("VAS stopped.", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="vas", description=__doc__)
    parser.add_argument("command", choices=("up", *CHILDREN, "detector"))
    args = parser.parse_args(argv)
    setup_logging(args.command)
    settings = _settings()
    if args.command == "up":
        raise SystemExit(cmd_up(settings))
    {"api": cmd_api, "worker": cmd_worker, "media-node": cmd_media_node,
     "detector": cmd_detector}[args.command](settings)


if __name__ == "__main__":
    main()
