"""What the deployment files promise: JSON-only Celery, keys as digests, ports on localhost, one
set of settings for every container, a pinned production install."""

from __future__ import annotations

import hashlib
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from common.queue import celery_config, make_celery
from common.settings import Settings
from tests.system import ROOT


def dotenv(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {key.strip(): value.strip() for key, value in pairs if not key.startswith("#")}


def locked() -> dict[str, str]:
    """requirements.lock as {canonical name: pinned version}."""
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        spec = line.split("#", 1)[0].strip()
        if spec:
            name, version = spec.split("==")
            pins[canonicalize_name(name)] = version
    return pins


def compose(name: str = "docker-compose.yml") -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / name).read_text())
    return loaded


def by_default(value: object) -> str:
    """A compose value as it is when .env and the shell leave its variables unset."""
    return re.sub(r"\$\{\w+(?::-([^}]*))?[^}]*\}", lambda m: m.group(1) or "", str(value))


APP_IMAGE = "image-pipelines:dev"
# Settings compose sets otherwise: the image sets DATA_DIR; plain keys never reach a container;
# each worker has its own metrics endpoint.
NOT_SHARED = {"DATA_DIR", "API_KEYS", "WORKER_METRICS_PORT", "WORKER_METRICS_HOST"}


def app_services() -> dict[str, dict[str, Any]]:
    """The services that run the project's image."""
    return {
        name: service
        for name, service in compose()["services"].items()
        if service.get("image") == APP_IMAGE
    }


def test_celery_accepts_and_sends_json_only() -> None:
    # When
    config = celery_config(Settings(broker_url="redis://localhost:6379/0"))

    # Then: pickle (code execution on load) is never accepted
    assert config["accept_content"] == ["json"]
    assert config["task_serializer"] == "json"
    assert config["result_serializer"] == "json"
    assert config["event_serializer"] == "json"


def test_the_gateway_client_is_configured_json_only() -> None:
    conf = make_celery("pipeline-gateway", Settings(broker_url="redis://localhost:6379/0")).conf
    assert list(conf.accept_content) == ["json"]
    assert conf.task_serializer == "json"


def test_dotenv_gives_the_api_the_digest_of_the_development_key() -> None:
    env = dotenv(ROOT / ".env")
    assert env["API_KEY"]
    assert hashlib.sha256(env["API_KEY"].encode()).hexdigest() == env["API_KEY_HASHES"]


def test_env_example_names_every_secret_without_a_working_value() -> None:
    example = dotenv(ROOT / ".env.example")
    for name in ("POSTGRES_PASSWORD", "FLOWER_BASIC_AUTH", "API_KEY_HASHES"):
        assert "replace" in example[name], name
    assert "API_KEY" not in example


def test_compose_gives_the_containers_only_the_key_digest() -> None:
    for name, service in app_services().items():
        env = service["environment"]
        assert "API_KEY_HASHES" in env, name
        assert "API_KEY" not in env, name
        assert "API_KEYS" not in env, name


@pytest.mark.parametrize("service", ["api", "adminer", "flower", "prometheus"])
def test_compose_binds_published_services_to_localhost(service: str) -> None:
    ports = compose()["services"][service]["ports"]
    assert ports
    assert all(by_default(port).startswith("127.0.0.1:") for port in ports), ports


@pytest.mark.parametrize("service", ["postgres", "redis"])
def test_compose_publishes_the_servers_only_with_the_ports_override(service: str) -> None:
    # Given: the machine may run PostgreSQL and Redis on their ports already
    assert "ports" not in compose()["services"][service]

    ports = compose("docker-compose.ports.yml")["services"][service]["ports"]

    assert ports
    assert all(by_default(port).startswith("127.0.0.1:") for port in ports), ports


def test_every_app_container_gets_every_setting_alike() -> None:
    # Given: the settings the code reads, and what each container of the image is given
    settings = {name.upper() for name in Settings.model_fields}
    shared = compose()["x-app-env"]
    services = app_services()

    # Then: every setting is in the shared block, and each container has the block unchanged
    assert settings - NOT_SHARED <= set(shared), settings - NOT_SHARED - set(shared)
    assert len(services) >= 6, list(services)
    for name, service in services.items():
        env = service["environment"]
        assert {key: env.get(key) for key in shared} == shared, name


def test_the_api_sends_to_the_queues_the_workers_read() -> None:
    shared = compose()["x-app-env"]
    services = compose()["services"]

    queue = by_default(shared["QUEUE_NAME"])
    worker_queues = [
        by_default(services[name]["command"][services[name]["command"].index("-Q") + 1])
        for name in ("worker", "worker-io")
    ]

    assert services["api"]["environment"]["QUEUE_NAME"] == shared["QUEUE_NAME"]
    assert worker_queues == [queue, f"{queue}.io"]


def test_compose_checks_postgres_over_tcp_and_prestart_waits_for_it() -> None:
    # pg_isready on the unix socket passes while the first start's init server runs
    postgres = compose()["services"]["postgres"]
    assert "-h 127.0.0.1" in " ".join(postgres["healthcheck"]["test"])
    prestart = compose()["services"]["prestart"]
    assert prestart["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "DATABASE_WAIT_S" in prestart["environment"]


def test_one_service_builds_the_image_and_every_other_waits_for_it() -> None:
    services = app_services()
    builders = [name for name, service in services.items() if "build" in service]

    assert builders == ["prestart"]
    for name, service in services.items():
        if name != "prestart":
            # never pulled from a registry; created once prestart (built first) has finished
            assert service["pull_policy"] == "never", name
            after = service["depends_on"]["prestart"]["condition"]
            assert after == "service_completed_successfully", name


def test_compose_requires_flower_basic_auth() -> None:
    flower_env = compose()["services"]["flower"]["environment"]
    assert flower_env["FLOWER_BASIC_AUTH"].startswith("${FLOWER_BASIC_AUTH:?")


def test_no_development_secret_appears_in_the_code() -> None:
    env = dotenv(ROOT / ".env")
    secrets = [env["API_KEY"], env["API_KEY_HASHES"], env["FLOWER_BASIC_AUTH"]]
    for folder in ("api", "common", "worker", "mlmock"):
        for source in (ROOT / folder).rglob("*.py"):
            text = source.read_text()
            assert not any(secret in text for secret in secrets), source


def test_the_lock_pins_every_runtime_dependency_within_its_range() -> None:
    # Given: what pyproject.toml asks for, and what the image installs
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = locked()

    for requirement in map(Requirement, project["dependencies"]):
        # Then: each is pinned, at a version its range admits (else: `make lock`)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is missing from requirements.lock: run make lock"
        assert requirement.specifier.contains(pins[name], prereleases=True), (name, pins[name])
    # and the Redis transport's own needs came with the extras
    assert "packaging" in pins


def test_the_image_installs_the_lock_and_checks_it() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "pip install -r requirements.lock" in dockerfile
    assert "pip check" in dockerfile
