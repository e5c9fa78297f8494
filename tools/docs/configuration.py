"""docs/configuration.md: every setting with its variable, default and meaning.

From the `Field(description=...)` of common.settings.Settings and of the mock's MockSettings,
and from the Procfile's `${NAME:-default}` variables (their meanings below: a Procfile variable
not described here fails `make docs`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic_settings import BaseSettings

from common.settings import PROJECT_ROOT, Settings
from mlmock.main import MockSettings
from tools.docs.markdown import GENERATED, cell, code

_PROCFILE_VARIABLE = re.compile(r"\$\{(\w+):-([^}]*)\}")

RUN_VARIABLES = {
    "API_PORT": "Port of the API (`make run`; compose publishes 8000).",
    "MLMOCK_PORT": "Port of the model mock; if you move it, set MODEL_URL to match.",
    "WORKER_CONCURRENCY": "Processes of the CPU worker (compose reads it too).",
    "WORKER_IO_THREADS": "Threads of the I/O worker (compose reads it too).",
    "WORKER_IO_METRICS_PORT": "Port of the I/O worker's Prometheus endpoint.",
    "FLOWER_PORT": "Port of Flower.",
}
# Read outside any settings object: (default, meaning).
OTHER_VARIABLES = {
    "RUN_STOP_TIMEOUT_S": (
        "`30`",
        "How long `make run`'s Ctrl-C waits for its processes to stop before killing them, "
        "seconds (tools/run.py).",
    ),
    "PROMETHEUS_MULTIPROC_DIR": (
        "unset",
        "prometheus_client's folder for several processes' metrics: set it before starting "
        "the API as several processes; a worker uses `$DATA_DIR/prometheus/worker-<port>` "
        "when unset. See [Metrics](operations.md#metrics).",
    ),
}
# Where the docs say more about a setting: a link after its meaning. A name that is no longer a
# setting fails `make docs`.
SEE_ALSO = {
    "flower_events_window_s": "operations.md#flower",
    "webhook_secret": "api.md#webhooks",
    "webhook_allowed_networks": "api.md#webhooks",
    "api_keys": "api.md#api-keys",
    "api_key_hashes": "api.md#api-keys",
    "max_queued_jobs": "api.md#backpressure",
    "queue_depth_cache_s": "api.md#backpressure",
    "recovery_grace_s": "operations.md#when-things-break",
    "recovery_interval_s": "operations.md#when-things-break",
    "recovery_max_enqueues": "operations.md#when-things-break",
    "job_retention_days": "operations.md#retention",
    "broker_visibility_timeout_s": "operations.md#when-things-break",
    "step_lease_s": "operations.md#when-things-break",
    "broker_socket_timeout_s": "operations.md#faults-across-hosts",
    "broker_health_check_s": "operations.md#faults-across-hosts",
    "database_connect_timeout_s": "operations.md#faults-across-hosts",
    "database_tcp_timeout_s": "operations.md#faults-across-hosts",
    "database_idle_in_transaction_s": "operations.md#faults-across-hosts",
    "log_format": "operations.md#logs",
    "worker_metrics_port": "operations.md#metrics",
}
TABLE = ["| Variable | Default | Meaning |", "| --- | --- | --- |"]


def _default(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, Path):
        shown = value.relative_to(PROJECT_ROOT) if value.is_relative_to(PROJECT_ROOT) else value
        return f"`{shown}/` in the project"
    if hasattr(value, "get_secret_value"):
        return code(value.get_secret_value())
    return code(value)


def settings_rows(cls: type[BaseSettings]) -> list[str]:
    """One table row per field of `cls`; raises ValueError for a field without a description."""
    prefix = str(cls.model_config.get("env_prefix") or "")
    rows = []
    for name, info in cls.model_fields.items():
        if not info.description:
            raise ValueError(f"{cls.__name__}.{name} has no Field(description=...)")
        alias = info.validation_alias if isinstance(info.validation_alias, str) else None
        variable = alias or (prefix + name).upper()
        default = _default(info.get_default(call_default_factory=True))
        meaning = cell(info.description)
        if cls is Settings and name in SEE_ALSO:
            meaning += f" [More]({SEE_ALSO[name]})."
        rows.append(f"| `{variable}` | {default} | {meaning} |")
    return rows


def _run_rows(procfile: Path) -> list[str]:
    seen: dict[str, str] = {}
    for name, default in _PROCFILE_VARIABLE.findall(procfile.read_text()):
        seen.setdefault(name, default)
    rows = []
    for name, default in seen.items():
        if name.lower() in Settings.model_fields:
            continue  # a setting: in the first table
        if name not in RUN_VARIABLES:
            raise ValueError(f"the Procfile reads {name}: describe it in RUN_VARIABLES")
        rows.append(f"| `{name}` | {code(default)} | {RUN_VARIABLES[name]} |")
    rows += [f"| `{name}` | {d} | {meaning} |" for name, (d, meaning) in OTHER_VARIABLES.items()]
    return rows


def configuration_md() -> str:
    """The text of docs/configuration.md. Raises ValueError for a setting without a
    description, a Procfile variable without a meaning, or a SEE_ALSO name no setting has."""
    unknown = set(SEE_ALSO) - set(Settings.model_fields)
    if unknown:
        raise ValueError(f"SEE_ALSO names settings that do not exist: {sorted(unknown)}")
    lines = [
        GENERATED,
        "",
        "# Configuration",
        "",
        "Environment variables only, read once per process into `common.settings.Settings`. A",
        "variable set to the empty string counts as unset (compose passes every setting to every",
        "container as `${NAME:-}`, so one left out of `.env` keeps the default below). `make run`",
        "needs none of them; every other process needs `DATABASE_URL` and `BROKER_URL`.",
        "",
        "## The services (API, workers, `python -m common.bootstrap`)",
        "",
        *TABLE,
        *settings_rows(Settings),
        "",
        "## The model mock (`mlmock/`)",
        "",
        "It reads only these, and answers `conf` to 4 decimals. Faults are for tests and soak",
        "runs, drawn afresh for every request, seeded or not, so a retry can succeed.",
        "",
        *TABLE,
        *settings_rows(MockSettings),
        "",
        "## `make run` (the Procfile) and others",
        "",
        *TABLE,
        *_run_rows(PROJECT_ROOT / "Procfile"),
        "",
    ]
    return "\n".join(lines)
