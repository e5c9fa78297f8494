"""API keys: an API started with keys refuses a request without a valid one, bar health and docs."""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Iterator

import httpx
import pytest
from pydantic import SecretStr

from api.security import key_digests
from common.settings import Settings
from tests import images
from tests.helpers.api import assert_error, stored_rows, wait_until_idle
from tests.helpers.product import side_api
from tests.system import ROOT, System, wait_for_job

PLAIN_KEY = "test-plain-key-0f6c1d"
HASHED_KEY = "test-hashed-key-9a2e77"


@pytest.fixture(scope="module")
def secured(system: System, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """A second API on the test database, with one key given plain and one as its digest."""
    with side_api(
        tmp_path_factory.mktemp("secured-logs"),
        API_KEYS=PLAIN_KEY,
        API_KEY_HASHES=hashlib.sha256(HASHED_KEY.encode()).hexdigest().upper(),
    ) as client:
        yield client


PROTECTED = [
    ("GET", "/pipelines"),
    ("GET", "/pipelines/1"),
    ("GET", "/jobs/00000000-0000-0000-0000-000000000000"),
    ("POST", "/jobs"),
    ("POST", "/pipelines"),
    ("POST", "/process_image/"),
    ("GET", "/no-such-route"),
]


@pytest.mark.parametrize(("method", "path"), PROTECTED)
@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "missing_api_key"),
        ({"Authorization": "Bearer wrong-key"}, "invalid_api_key"),
        ({"X-API-Key": "wrong-key"}, "invalid_api_key"),
        ({"Authorization": f"Basic {PLAIN_KEY}"}, "missing_api_key"),
        ({"X-API-Key": PLAIN_KEY[:-1]}, "invalid_api_key"),
        ({"X-API-Key": hashlib.sha256(HASHED_KEY.encode()).hexdigest()}, "invalid_api_key"),
    ],
    ids=["none", "wrong-bearer", "wrong-x-api-key", "basic-scheme", "prefix", "the-digest"],
)
def test_request_without_a_valid_key_is_401_with_www_authenticate(
    secured: httpx.Client, method: str, path: str, headers: dict[str, str], code: str
) -> None:
    # When
    response = secured.request(method, path, headers=headers)

    # Then
    assert_error(response, 401, code)
    assert response.headers["www-authenticate"] == "Bearer"


def test_refused_upload_stores_nothing(secured: httpx.Client) -> None:
    # Given
    wait_until_idle()
    before = stored_rows()

    # When
    response = secured.post(
        "/jobs",
        files={"image": ("a.jpg", images.jpeg(64, 48), "image/jpeg")},
        data={"pipeline_id": "1"},
        headers={"X-API-Key": "wrong"},
    )

    # Then
    assert_error(response, 401, "invalid_api_key")
    assert stored_rows() == before


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": f"Bearer {PLAIN_KEY}"},
        {"Authorization": f"bearer {HASHED_KEY}"},
        {"X-API-Key": PLAIN_KEY},
        {"X-API-Key": HASHED_KEY},
    ],
    ids=["bearer-plain", "bearer-hashed", "x-api-key-plain", "x-api-key-hashed"],
)
def test_valid_key_in_either_header_is_let_through(
    secured: httpx.Client, headers: dict[str, str]
) -> None:
    # When
    listed = secured.get("/pipelines", headers=headers)
    submitted = secured.post(
        "/jobs",
        files={"image": ("a.jpg", images.jpeg(64, 48, seed=8), "image/jpeg")},
        data={"pipeline_id": "1"},
        headers=headers,
    )

    # Then
    assert listed.status_code == 200, listed.text
    assert submitted.status_code == 202, submitted.text
    poller = httpx.Client(base_url=secured.base_url, headers=headers, timeout=30)
    with poller:
        assert wait_for_job(poller, submitted.json()["job_id"])["status"] == "succeeded"


@pytest.mark.parametrize(
    "path",
    [
        "/health",
        "/docs",
        "/redoc",
        "/openapi.json",
        "/docs/static/swagger-ui-bundle.js",
        "/docs/static/redoc.standalone.js",
    ],
)
def test_health_and_docs_need_no_key(secured: httpx.Client, path: str) -> None:
    assert secured.get(path).status_code == 200


def test_the_bare_address_redirects_without_a_key(secured: httpx.Client) -> None:
    response = secured.get("/")

    assert response.status_code == 307
    assert response.headers["location"] == "/ui"


def test_openapi_documents_the_key_schemes_and_401(secured: httpx.Client) -> None:
    # When
    spec = secured.get("/openapi.json").json()

    # Then
    schemes = spec["components"]["securitySchemes"]
    assert schemes["bearerKey"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "Authorization: Bearer <key>",
    }
    assert schemes["apiKeyHeader"] == {"type": "apiKey", "in": "header", "name": "X-API-Key"}
    submit = spec["paths"]["/jobs"]["post"]
    assert submit["security"] == [{"bearerKey": []}, {"apiKeyHeader": []}]
    assert submit["responses"]["401"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorResponse"
    }
    assert "security" not in spec["paths"]["/health"]["get"]


def test_digests_come_from_both_settings_and_no_plain_key_is_kept() -> None:
    # Given
    settings = Settings(
        api_keys=SecretStr(" key-one , key-two ,"),
        api_key_hashes=hashlib.sha256(b"three").hexdigest(),
    )

    # When
    digests = key_digests(settings)

    # Then
    expected = (b"key-one", b"key-two", b"three")
    assert digests == {hashlib.sha256(key).digest() for key in expected}
    assert "key-one" not in repr(settings)


def test_no_keys_configured_means_no_key_required() -> None:
    assert key_digests(Settings(api_keys=SecretStr(""), api_key_hashes=" , ")) == frozenset()


@pytest.mark.parametrize("bad", ["abc", "g" * 64, "a" * 63, "a" * 65])
def test_a_malformed_digest_stops_the_start(bad: str) -> None:
    with pytest.raises(ValueError, match="API_KEY_HASHES"):
        key_digests(Settings(api_key_hashes=bad))


@pytest.mark.parametrize(("key", "ok"), [(PLAIN_KEY, True), ("", False)], ids=["key", "no-key"])
def test_requests_sh_sends_api_key_from_the_environment(
    secured: httpx.Client, key: str, ok: bool
) -> None:
    # Given
    env = {**os.environ, "API_URL": str(secured.base_url).rstrip("/"), "API_KEY": key}

    # When
    done = subprocess.run(
        ["bash", str(ROOT / "requests.sh")], env=env, capture_output=True, text=True, timeout=120
    )

    # Then
    assert (done.returncode == 0) is ok, done.stdout + done.stderr


def test_key_is_checked_before_the_size_of_the_body(secured: httpx.Client) -> None:
    # Given: an oversized upload without a key
    huge = b"\xff\xd8\xff" + bytes(21 * 2**20)

    # When
    response = secured.post("/jobs", files={"image": ("a.jpg", huge, "image/jpeg")})

    # Then: the stranger learns nothing about limits
    assert_error(response, 401, "missing_api_key")
