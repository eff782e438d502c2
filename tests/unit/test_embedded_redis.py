"""jobs.embedded_redis: the embedded redis-server really goes away on stop, even with
clients still connected and even when it cannot save (its data dir deleted)."""

from __future__ import annotations

import shutil

import pytest
import redis

from jobs.embedded_redis import EmbeddedRedis, _alive


@pytest.mark.parametrize("data_dir_removed", [False, True])
def test_stop_ends_the_server(tmp_path, data_dir_removed):
    data_dir = tmp_path / "redis"
    server = EmbeddedRedis(data_dir)
    url = server.start()
    pid = server._server.pid
    other = redis.Redis.from_url(url)
    assert other.ping()
    if data_dir_removed:
        shutil.rmtree(data_dir)
    server.stop()
    assert not _alive(pid)
    other.close()
    if not data_dir_removed:
        assert (data_dir / "redis.rdb").exists()  # saved on the way out
