"""kombu's Redis transport, with one client object per channel for the commands it sends.

kombu's Redis channel builds a new `redis.Redis` object for every command it sends outside its
event loop (`Channel.conn_or_acquire`): each publish, each acknowledgement, each QoS record.
redis-py 8 fills about 170 response callbacks into every new client object, which measured
0.2 ms of CPU, 40% of what publishing a task costs (`make bench`'s gateway sends one per job, a
worker one per task and more to acknowledge them). A client object holds no connection of its
own: it borrows one from the channel's connection pool for each command, and redis-py documents
client objects as safe to share between threads. So sharing one per pool changes nothing but
that cost. kombu has no option for it; this subclass is the smallest change that does it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kombu.transport import redis as kombu_redis

# What celery_config names as the transport of a redis:// broker URL.
TRANSPORT = "common.broker:Transport"


class Channel(kombu_redis.Channel):
    """kombu's Redis channel, sharing one client object per connection pool."""

    _shared_client: Any = None

    @contextmanager
    def conn_or_acquire(self, client: Any = None) -> Iterator[Any]:
        """The client to send a command with: `client` if given, else the channel's shared
        one, built again when the channel's pool was replaced (after a fork or a reconnect)."""
        if client:
            yield client
            return
        pool = self.pool
        shared = self._shared_client
        if shared is None or shared.connection_pool is not pool:
            # Two threads may both build one here; either is right, the other is dropped.
            shared = self._shared_client = self._create_client()  # type: ignore[no-untyped-call]
        yield shared


class Transport(kombu_redis.Transport):
    """kombu's Redis transport with the Channel above."""

    Channel = Channel
