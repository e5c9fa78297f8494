"""Per-process resources of a worker: one pooled HTTP client, one built pipeline per config."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import httpx

from common.egress import guarded_client
from common.pipeline import BuiltPipeline, build_pipeline, default_registry
from common.pipeline.registry import Registry
from common.settings import get_settings

_http: httpx.Client | None = None
_egress: httpx.Client | None = None


def http_client() -> httpx.Client:
    global _http
    if _http is None:
        # Connections open as needed: a pool process uses one, a worker of threads up to one
        # per thread (a smaller limit would make threads queue for a connection).
        _http = httpx.Client(limits=httpx.Limits(max_connections=64, max_keepalive_connections=64))
    return _http


def egress_client() -> httpx.Client:
    """The client for destinations a pipeline's author chose (webhooks): public unicast
    addresses and WEBHOOK_ALLOWED_NETWORKS only, each connection to the address checked."""
    global _egress
    if _egress is None:
        _egress = guarded_client(get_settings().egress_policy)
    return _egress


def reset_http_client() -> None:
    global _http, _egress
    _http = _egress = None  # a forked child must not share its parent's sockets


@lru_cache(maxsize=1)
def registry() -> Registry:
    return default_registry()


@lru_cache(maxsize=256)
def _build(config_json: str) -> BuiltPipeline:
    return build_pipeline(json.loads(config_json), registry())


def pipeline_for(config: dict[str, Any]) -> BuiltPipeline:
    """Build (or reuse) the runnable pipeline of a stored config; raises PipelineConfigError."""
    return _build(json.dumps(config, sort_keys=True))


# A stored pipeline version never changes, so its built pipeline is kept by id: a step's claim
# then reads no version row and serialises no config.
_versions: dict[int, BuiltPipeline] = {}
_MAX_VERSIONS = 1024


def pipeline_for_version(
    version_id: int, stored_config: Callable[[], dict[str, Any] | None]
) -> BuiltPipeline | None:
    """The runnable pipeline of a version; `stored_config` reads it only the first time (None:
    the version does not exist). Raises PipelineConfigError."""
    built = _versions.get(version_id)
    if built is None:
        config = stored_config()
        if config is None:
            return None
        built = pipeline_for(config)
        if len(_versions) >= _MAX_VERSIONS:
            _versions.clear()
        _versions[version_id] = built
    return built
