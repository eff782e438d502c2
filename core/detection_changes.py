"""Detection settings changes, pushed to the media nodes through Redis pub/sub.

The API announces each change it writes (`announce`: the camera's id, or `global` for the
global settings and the system settings' `detection` section); every media node follows
the channel (`follow`) and re-reads the settings of the streams concerned at once, instead
of at its next periodic re-read. Best-effort on both sides: a lost announcement only means
the node's periodic re-read (every min(interval, 1 s)) picks the change up
(docs/detection.md, "On the media node").
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import redis
from redis.asyncio import Redis as AsyncRedis

logger = logging.getLogger(__name__)

GLOBAL = "global"
RETRY_S = 1.0


def channel(namespace: str) -> str:
    """The channel of one installation (its Redis namespace)."""
    return f"{namespace}:detection:settings-changed"


async def announce(client: AsyncRedis, namespace: str, scope: str) -> None:
    """Tell the media nodes that `scope`'s settings changed (logged, never raised)."""
    try:
        await client.publish(channel(namespace), scope)
    except redis.RedisError as exc:
        logger.warning("detection settings change of %s not announced: %s", scope, exc)


async def follow(url: str, namespace: str, changed: Callable[[str], None]) -> None:
    """Call `changed(scope)` for every announcement, until cancelled; reconnects on its own."""
    while True:
        client = AsyncRedis.from_url(url)
        try:
            async with client.pubsub() as pubsub:
                await pubsub.subscribe(channel(namespace))
                async for message in pubsub.listen():
                    if message["type"] == "message":
                        data = message["data"]
                        changed(data.decode() if isinstance(data, bytes) else str(data))
        except asyncio.CancelledError:
            raise
        except (redis.RedisError, OSError) as exc:  # the periodic re-reads carry on meanwhile
            logger.warning("following detection settings changes failed (%s); retrying", exc)
        except Exception:  # a bug, not an outage: said loudly, and the node keeps following
            logger.exception("following detection settings changes failed; retrying")
        finally:
            await client.aclose()
        await asyncio.sleep(RETRY_S)
