"""What the deployment files promise: JSON-only Celery, keys as digests, ports on localhost."""

from __future__ import annotations

import hashlib
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from common.queue import celery_config, client
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


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def test_celery_accepts_and_sends_json_only() -> None:
    # Given: both broker flavours
    for settings in (Settings(broker_url="redis://localhost:6379/0"), Settings(broker_url=None)):
        # When
        config = celery_config(settings)

        # Then: pickle (code execution on load) is never accepted
        assert config["accept_content"] == ["json"]
        assert config["task_serializer"] == "json"
        assert config["result_serializer"] == "json"
        assert config["event_serializer"] == "json"


def test_the_gateway_client_is_configured_json_only() -> None:
    conf = client().conf
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


def test_compose_gives_the_api_only_the_key_digest() -> None:
    api_env = compose()["services"]["api"]["environment"]
    assert "API_KEY_HASHES" in api_env
    assert "API_KEY" not in api_env
    assert "API_KEYS" not in api_env


@pytest.mark.parametrize("service", ["postgres", "redis", "adminer", "flower"])
def test_compose_binds_internal_services_to_localhost(service: str) -> None:
    ports = compose()["services"][service]["ports"]
    assert ports
    assert all(str(port).startswith("127.0.0.1:") for port in ports), ports


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
