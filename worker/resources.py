"""Per-process resources of a worker: one pooled HTTP client, one built pipeline per config."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

import httpx

from common.pipeline import BuiltPipeline, build_pipeline, default_registry
from common.pipeline.registry import Registry

_http: httpx.Client | None = None


def http_client() -> httpx.Client:
    global _http
    if _http is None:
        _http = httpx.Client(limits=httpx.Limits(max_connections=4, max_keepalive_connections=4))
    return _http


def reset_http_client() -> None:
    global _http
    _http = None  # a forked child must not share its parent's sockets


@lru_cache(maxsize=1)
def registry() -> Registry:
    return default_registry()


@lru_cache(maxsize=256)
def _build(config_json: str) -> BuiltPipeline:
    return build_pipeline(json.loads(config_json), registry())


def pipeline_for(config: dict[str, Any]) -> BuiltPipeline:
    """Build (or reuse) the runnable pipeline of a stored config; raises PipelineConfigError."""
    return _build(json.dumps(config, sort_keys=True))
