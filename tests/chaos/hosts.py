"""Worker "hosts" and the API, each reaching Redis and PostgreSQL through proxies of its own.

A host is a Celery worker (its main process and pool) whose DATABASE_URL and BROKER_URL point
at its own `LinkProxy`s; the database knows it by its connection's application_name. The
servers are the test session's (tests/conftest.py), whatever they are.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import redis
import sqlalchemy as sa

from tests.chaos.proxy import LinkProxy, ProxyLoop
from tests.conftest import TEST_ENV
from tests.system import BIN, System, free_port, make_env

# Recovery shortened so that each fault runs in about a minute; every bound the suite asserts is
# computed from these (tests/chaos/audit.py), as "Faults across hosts" in docs/operations.md
# explains.
CHAOS_SETTINGS = {
    "STEP_LEASE_S": "4",
    "RECOVERY_GRACE_S": "6",
    "RECOVERY_INTERVAL_S": "0.5",
    "BROKER_SOCKET_TIMEOUT_S": "3",
    "BROKER_HEALTH_CHECK_S": "2",
    "DATABASE_CONNECT_TIMEOUT_S": "3",
    "DATABASE_TCP_TIMEOUT_S": "10",
    "DATABASE_IDLE_IN_TRANSACTION_S": "5",
    "MODEL_TIMEOUT_S": "2",
    "MLMOCK_LATENCY_MS": "200",
    "STEP_RETRY_BACKOFF_S": "0.05",
    "DB_OUTAGE_MAX_RETRIES": "60",
}
HOSTS = ("host-a", "host-b")


@dataclass
class Links:
    """One machine's links: to PostgreSQL and to Redis."""

    postgres: LinkProxy
    redis: LinkProxy

    def go_silent(self) -> None:
        self.postgres.go_silent()
        self.redis.go_silent()

    def heal(self) -> None:
        self.postgres.heal()
        self.redis.heal()


@dataclass
class Cluster:
    queue: str
    links: dict[str, Links]
    systems: dict[str, System]
    api: httpx.Client
    direct_env: dict[str, str]  # the servers as the test itself reaches them, unproxied
    held_out: list[str] = field(default_factory=list)

    def kill_host(self, host: str) -> None:
        """The host is gone: its links fall silent and all its processes die at once."""
        self.links[host].go_silent()
        self.systems[host].stop(host, sig=signal.SIGKILL)

    def inspect(self, host: str) -> dict[str, list[str]]:
        """The job ids of the tasks the host's worker runs ("active") and holds ("reserved"),
        as `celery inspect` reports them."""
        node = f"{host}-{os.getpid()}@{socket.gethostname()}"  # as System.start_worker names it
        found: dict[str, list[str]] = {}
        for what in ("active", "reserved"):
            done = System(env=self.direct_env, logs=self.systems[host].logs).run(
                str(BIN / "celery"), "-A", "worker", "inspect", what, "--json", "-d", node,
                "-t", "5", timeout=60,
            )  # fmt: skip
            replies = json.loads(done.stdout or "{}") if done.returncode == 0 else {}
            found[what] = [
                str(task["args"][0]) for tasks in replies.values() for task in tasks if task["args"]
            ]
        return found

    def queued_messages(self) -> int:
        client = redis.Redis.from_url(self.direct_env["BROKER_URL"], socket_timeout=5)
        try:
            return int(client.llen(self.queue)) + int(client.llen(f"{self.queue}.io"))
        finally:
            client.close()

    def log(self, host: str) -> str:
        return self.systems[host].log(host)


def _through(url: str, proxy: LinkProxy, **query: str) -> str:
    """The database URL `url` with its host and port replaced by the proxy's, plus `query`."""
    parsed = sa.make_url(url).set(host="127.0.0.1", port=proxy.port)
    return parsed.update_query_dict(query).render_as_string(hide_password=False)


def _redis_through(url: str, proxy: LinkProxy) -> str:
    """The Redis URL `url` with its host and port replaced by the proxy's."""
    parts = urlsplit(url)
    netloc = f"{parts.netloc.rpartition('@')[0]}@" if "@" in parts.netloc else ""
    return urlunsplit(parts._replace(netloc=f"{netloc}127.0.0.1:{proxy.port}"))


def _upstream(url: str, default_port: int) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or default_port


@contextmanager
def chaos_cluster(logs: Path, worker_hosts: tuple[str, ...] = HOSTS) -> Iterator[Cluster]:
    """The mock, one worker per host and the API, each with proxied links to the servers."""
    queue = f"{TEST_ENV['QUEUE_NAME']}-chaos-{uuid.uuid4().hex[:6]}"
    mlmock_port, api_port = free_port(), free_port()
    base = {
        **TEST_ENV,
        **CHAOS_SETTINGS,
        "QUEUE_NAME": queue,
        "MODEL_URL": f"http://127.0.0.1:{mlmock_port}",
    }
    database_url, broker_url = TEST_ENV["DATABASE_URL"], TEST_ENV["BROKER_URL"]
    loop = ProxyLoop()
    links: dict[str, Links] = {}
    systems: dict[str, System] = {}
    with ExitStack() as stack:
        stack.callback(loop.close)
        for machine in (*worker_hosts, "api"):
            link = Links(
                LinkProxy(loop, f"{machine}-pg", _upstream(database_url, 5432)),
                LinkProxy(loop, f"{machine}-redis", _upstream(broker_url, 6379)),
            )
            links[machine] = link
            stack.callback(link.postgres.close)
            stack.callback(link.redis.close)
            env = make_env(
                {
                    **base,
                    "DATABASE_URL": _through(database_url, link.postgres, application_name=machine),
                    "BROKER_URL": _redis_through(broker_url, link.redis),
                }
            )
            systems[machine] = System(env=env, logs=logs / machine)
            stack.callback(systems[machine].stop)
        direct = make_env({**base, "DATABASE_URL": database_url, "BROKER_URL": broker_url})
        mock = System(env=direct, logs=logs / "mlmock")
        stack.callback(mock.stop)
        mock.start_mlmock(mlmock_port)
        for host in worker_hosts:
            systems[host].start_worker(host, 2, "--prefetch-multiplier", "4")
        systems["api"].start_api(api_port)
        api = stack.enter_context(httpx.Client(base_url=f"http://127.0.0.1:{api_port}", timeout=30))
        yield Cluster(queue, links, systems, api, direct)
