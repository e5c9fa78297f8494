"""Per-process resources of a worker: one pooled HTTP client, one built pipeline per config."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import lru_cache
from threading import Lock
from typing import Any

import httpx
from cachetools import LRUCache, cached

from common.egress import guarded_client
from common.pipeline import (
    BuiltPipeline,
    ConfigIssue,
    PipelineConfigError,
    build_pipeline,
    registry,
)
from common.settings import get_settings

_http: httpx.Client | None = None
_egress: httpx.Client | None = None
# The threads of an I/O worker ask for the clients at once when the first tasks arrive: one
# builds each client (an SSL context and a connection pool), the others wait for it.
_clients_lock = Lock()


def http_client() -> httpx.Client:
    global _http
    with _clients_lock:
        if _http is None:
            # Connections open as needed: a pool process uses one, a worker of threads up to one
            # per thread (a smaller limit would make threads queue for a connection).
            limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
            _http = httpx.Client(limits=limits)
        return _http


def egress_client() -> httpx.Client:
    """The client for destinations a pipeline's author chose (webhooks): public unicast
    addresses and WEBHOOK_ALLOWED_NETWORKS only, each connection to the address checked."""
    global _egress
    with _clients_lock:
        if _egress is None:
            _egress = guarded_client(get_settings().egress_policy)
        return _egress


def reset_http_client() -> None:
    global _http, _egress, _clients_lock
    _http = _egress = None  # a forked child must not share its parent's sockets
    _clients_lock = Lock()  # nor a lock a thread of its parent held when it forked


@lru_cache(maxsize=256)
def _build(config_json: str) -> BuiltPipeline:
    return build_pipeline(json.loads(config_json), registry())


def pipeline_for(config: dict[str, Any]) -> BuiltPipeline:
    """Build (or reuse) the runnable pipeline of a stored config; raises PipelineConfigError."""
    return _build(json.dumps(config, sort_keys=True))


# A stored pipeline version never changes, so its built pipeline is kept by id (the 1024 used
# last): a step's claim then reads no version row and serialises no config. Errors are not kept.
@cached(LRUCache(maxsize=1024), key=lambda version_id, _stored_config: version_id, lock=Lock())
def pipeline_for_version(
    version_id: int, stored_config: Callable[[], dict[str, Any] | None]
) -> BuiltPipeline:
    """The runnable pipeline of a version; `stored_config` reads it only the first time (None:
    the version does not exist). Raises PipelineConfigError, saying why there is none."""
    config = stored_config()
    if config is None:
        raise PipelineConfigError([ConfigIssue(None, None, "the pipeline version is gone")])
    return pipeline_for(config)
