"""The one place configuration is read: the environment."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from common.egress import EgressPolicy, parse_networks

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    # A variable set to "" counts as unset: compose passes every setting to every container as
    # ${NAME:-}, so that one left out of .env keeps the default written here.
    model_config = SettingsConfigDict(
        extra="ignore", protected_namespaces=(), env_ignore_empty=True
    )

    data_dir: Path = Field(
        PROJECT_ROOT / "var",
        description="Folder of local files: the data of the servers `make run` starts, the "
        "workers' metrics.",
    )
    database_url: str | None = Field(
        None,
        description="PostgreSQL URL (postgresql://... uses psycopg 3). `make run` sets it to "
        "a private server's when unset; every other process needs it.",
    )
    broker_url: str | None = Field(
        None,
        description="Redis URL of the Celery broker (redis://host:6379/0). `make run` sets it to "
        "a private server's when unset; every other process needs it.",
    )
    queue_name: str = Field("pipeline", description="Celery queue the jobs and their steps go to.")
    database_wait_s: float = Field(
        60.0,
        ge=0,
        description="How long `python -m common.bootstrap` (compose's `prestart`) waits for the "
        "database to accept connections (a server still starting, as on compose's first `up`), "
        "seconds.",
    )

    model_url: str = Field("http://127.0.0.1:8001", description="Base URL of the model server.")
    model_timeout_s: float = Field(
        10.0, gt=0, description="Timeout of one call to the model server, seconds."
    )
    webhook_secret: SecretStr = Field(
        SecretStr(""),
        description="Key of the HMAC-SHA256 signature (X-Signature) of notify.webhook@v1's "
        "posts; unset means webhooks are not sent (the job notes why).",
    )
    webhook_allowed_networks: str = Field(
        "",
        description="Internal networks notify.webhook@v1 may post to besides public addresses, "
        "comma-separated CIDRs (10.20.0.0/16,fd00::/8); empty: public unicast only. Every "
        "pipeline author can then reach anything listening in these networks.",
    )
    step_max_retries: int = Field(
        3,
        ge=0,
        description="Retries of a step that failed for a passing reason (a timeout, a 5xx, a "
        "refused connection).",
    )
    step_retry_backoff_s: float = Field(
        0.5, ge=0, description="First retry delay, seconds; it doubles each retry, with jitter."
    )
    db_outage_max_retries: int = Field(
        30,
        ge=0,
        description="Retries of a task that could not reach the database (backoff capped at 10 s).",
    )
    recovery_grace_s: float = Field(
        60.0,
        gt=0,
        description="An unfinished job that has not moved this long (seconds) is handed over "
        "again.",
    )
    recovery_interval_s: float = Field(
        10.0,
        gt=0,
        description="How often each worker runs the recovery sweep (and the retention sweep, "
        "with JOB_RETENTION_DAYS), seconds.",
    )
    recovery_max_enqueues: int = Field(
        5, ge=1, description="Hand-overs to the broker after which a job that never finishes fails."
    )
    job_retention_days: float = Field(
        0.0,
        ge=0,
        description="A finished job (succeeded or failed) untouched this many days is deleted, "
        "with its images, steps and detection, by the workers' sweep; 0 keeps every job.",
    )
    broker_visibility_timeout_s: int = Field(
        300,
        gt=0,
        description="Redis: a task taken but not acknowledged is delivered again after this long, "
        "seconds; keep it above the longest a task may run (the worker logs an error at start "
        "if it is not).",
    )
    broker_socket_timeout_s: float = Field(
        10.0,
        gt=0,
        description="Redis: the longest one command, or opening a connection, may wait for the "
        "server before the connection counts as broken (a silent link otherwise hangs it).",
    )
    broker_health_check_s: int = Field(
        10,
        ge=1,
        description="Redis: how often kombu checks its long-lived connections; a worker's "
        "silent consuming connection is dropped and reopened within 1 + 2 x this seconds.",
    )
    database_connect_timeout_s: int = Field(
        5,
        ge=2,
        description="PostgreSQL: the longest opening a connection may take (libpq "
        "connect_timeout, whole seconds, at least 2).",
    )
    database_tcp_timeout_s: int = Field(
        30,
        ge=3,
        description="PostgreSQL: TCP keepalive and TCP_USER_TIMEOUT of each connection: a peer "
        "gone silent breaks the connection within about this many seconds.",
    )
    database_idle_in_transaction_s: float = Field(
        60.0,
        gt=0,
        description="PostgreSQL: the server ends a session left idle inside a transaction this "
        "long (a client cut off mid-transaction), releasing its locks.",
    )
    step_lease_s: float = Field(
        30.0,
        gt=0,
        description="A running step's lease, seconds: its claim holds the step this long, renewed "
        "every third of it while it runs; a step whose worker died is run again once its lease "
        "lapsed.",
    )

    max_upload_bytes: int = Field(
        20 * 1024 * 1024, gt=0, description="Largest accepted upload, bytes (20 MiB)."
    )
    max_image_pixels: int = Field(
        50_000_000,
        gt=0,
        description="Largest accepted image in pixels (width x height), read from its header.",
    )
    max_image_side: int = Field(16384, gt=0, description="Largest accepted width or height, px.")
    accepted_image_formats: str = Field(
        "jpeg,png,webp,gif,bmp,tiff",
        description="Image formats accepted for upload, comma-separated; recognised by content.",
    )
    api_keys: SecretStr = Field(
        SecretStr(""),
        description="Plain API keys, comma-separated, hashed at start-up (for development; prefer "
        "API_KEY_HASHES). With both empty no key is required.",
    )
    api_key_hashes: str = Field(
        "", description="SHA-256 hex digests of API keys, comma-separated (sha256sum of the key)."
    )
    max_queued_jobs: int = Field(
        10_000,
        gt=0,
        description="Most unfinished (queued or running) jobs; submissions beyond get 503 "
        "queue_full with Retry-After.",
    )
    queue_depth_cache_s: float = Field(
        0.5,
        ge=0,
        description="How long the gateway reuses its count of unfinished jobs to refuse early, "
        "seconds.",
    )
    api_db_statement_timeout_s: float = Field(
        30.0,
        ge=0,
        description="API: PostgreSQL cancels a statement of the API's that runs longer (the "
        "request answers 503 database_busy); 0 means no limit. Workers are not limited.",
    )
    api_db_lock_timeout_s: float = Field(
        2.0,
        ge=0,
        description="API: PostgreSQL cancels a statement of the API's that waits longer for a "
        "lock, e.g. a row another session holds (503 database_busy); 0 means no limit.",
    )
    compat_wait_s: float = Field(
        30.0,
        gt=0,
        description="How long POST /process_image/ waits for its job to finish, seconds.",
    )
    max_wait_s: float = Field(
        30.0, ge=0, description="Longest wait a client may ask of POST /jobs?wait=N, in seconds."
    )
    max_batch_images: int = Field(
        50, gt=0, description="Most images one POST /jobs/batch may carry."
    )
    log_level: str = Field("INFO", description="Log level of every process.")
    log_format: Literal["text", "json"] = Field(
        "text",
        description="Log lines: `text`, readable lines; `json`, one JSON object per line "
        "(compose).",
    )
    task_events_lease_s: float = Field(
        15.0,
        ge=0,
        description="A worker started without --task-events sends task events for this many "
        "seconds after a monitor last asked for them (Flower asks every 5 s); 0 keeps them on "
        "once asked, as Celery does.",
    )
    flower_events_window_s: float = Field(
        300.0,
        ge=0,
        description="Flower (`python -m worker.flower`) asks the workers for task events only "
        "for this many seconds after its last request (a page, its API or /metrics; not "
        "/healthcheck); 0 asks always, as Flower does.",
    )
    worker_metrics_port: int = Field(
        9808,
        ge=0,
        le=65535,
        description="Port of a worker's Prometheus endpoint (its main process); 0 turns it off.",
    )
    worker_metrics_host: str = Field(
        "127.0.0.1",
        description="Address the worker's Prometheus endpoint listens on (0.0.0.0 in compose).",
    )

    @field_validator("webhook_allowed_networks")
    @classmethod
    def _cidrs(cls, value: str) -> str:
        parse_networks(value)  # a typo fails at start-up, not at the first webhook
        return value

    @property
    def egress_policy(self) -> EgressPolicy:
        """What notify.webhook@v1 may connect to: public unicast plus WEBHOOK_ALLOWED_NETWORKS."""
        return EgressPolicy(parse_networks(self.webhook_allowed_networks))

    @property
    def sqlalchemy_url(self) -> str:
        """DATABASE_URL, a PostgreSQL URL without a driver taking psycopg 3 (which sends image
        bytes as binary and prepares repeated statements). Raises MissingSettingError if unset,
        ValueError if it is not a PostgreSQL URL for psycopg 3."""
        if not self.database_url:
            raise MissingSettingError("DATABASE_URL")
        scheme, sep, rest = self.database_url.partition("://")
        if not sep or scheme not in ("postgres", "postgresql", "postgresql+psycopg"):
            # The repositories use psycopg 3 itself (binary results, binary COPY).
            raise ValueError(
                f"DATABASE_URL must be postgresql://... or postgresql+psycopg://..., not {scheme}://"
            )
        return f"postgresql+psycopg://{rest}"

    @property
    def celery_broker_url(self) -> str:
        """BROKER_URL. Raises MissingSettingError if unset."""
        if not self.broker_url:
            raise MissingSettingError("BROKER_URL")
        return self.broker_url

    def ensure_dirs(self) -> None:
        """Create the folder of local files."""
        self.data_dir.mkdir(parents=True, exist_ok=True)


class MissingSettingError(RuntimeError):
    """A setting the process cannot run without is unset."""

    def __init__(self, name: str) -> None:
        super().__init__(
            f"{name} is not set: `make run` sets it to the server it starts; "
            "anywhere else set it (see the README's settings)"
        )


@lru_cache
def get_settings() -> Settings:
    return Settings()
