"""The model server mock, in process: its answers under each setting, and what it refuses."""

from __future__ import annotations

import struct
import time
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

import mlmock.main
from tests import images

Configure = Callable[..., None]
BOX_KEYS = {"top_left_x", "top_left_y", "width", "height", "conf", "label"}
# Distinct images, the same bytes in every run.
SAMPLE = [images.solid(200, 100, (n * 12, 40, 255 - n * 12)) for n in range(20)]


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(mlmock.main.app) as test_client:
        yield test_client


@pytest.fixture
def configure(monkeypatch: pytest.MonkeyPatch) -> Iterator[Configure]:
    """Set MLMOCK_* settings for this test (no latency unless asked); restored afterwards."""

    def apply(**settings: object) -> None:
        for name in ("seed", "null_rate", "latency_ms"):
            monkeypatch.delenv(f"MLMOCK_{name.upper()}", raising=False)
        monkeypatch.setenv("MLMOCK_LATENCY_MS", "0")
        for name, value in settings.items():
            monkeypatch.setenv(f"MLMOCK_{name.upper()}", str(value))
        mlmock.main.get_settings.cache_clear()

    yield apply
    mlmock.main.get_settings.cache_clear()


def detect(client: TestClient, data: bytes, name: str = "car.png") -> Any:
    response = client.post("/process_image/", files={"image": (name, data, "image/png")})
    assert response.status_code == 200, response.text
    return response.json()


def test_null_rate_1_never_finds_a_car(client: TestClient, configure: Configure) -> None:
    configure(null_rate=1)

    answers = [detect(client, data) for data in SAMPLE]

    assert answers == [None] * len(SAMPLE)


def test_null_rate_0_always_answers_a_box_inside_the_image(
    client: TestClient, configure: Configure
) -> None:
    configure(null_rate=0)

    answers = [detect(client, data) for data in SAMPLE]

    for answer in answers:
        assert set(answer) == BOX_KEYS
        assert answer["label"] == 1
        assert 0 <= answer["conf"] < 1
        assert answer["conf"] == round(answer["conf"], 4)  # to 4 decimals, as documented
        assert answer["width"] >= 1
        assert answer["height"] >= 1
        assert answer["top_left_x"] >= 0
        assert answer["top_left_y"] >= 0
        assert answer["top_left_x"] + answer["width"] <= 200
        assert answer["top_left_y"] + answer["height"] <= 100


def test_null_rate_half_gives_both_answers(client: TestClient, configure: Configure) -> None:
    configure(null_rate=0.5, seed=3)

    answers = [detect(client, data) for data in SAMPLE]

    assert None in answers
    assert any(answer is not None for answer in answers)


def test_with_a_seed_the_same_image_gets_the_same_answer(
    client: TestClient, configure: Configure
) -> None:
    configure(null_rate=0, seed=42)

    first = [detect(client, data) for data in SAMPLE[:5]]
    again = [detect(client, data) for data in SAMPLE[:5]]

    assert first == again


def test_with_a_seed_different_images_get_different_answers(
    client: TestClient, configure: Configure
) -> None:
    configure(null_rate=0, seed=42)

    answers = [detect(client, data) for data in SAMPLE]

    assert len({tuple(sorted(answer.items())) for answer in answers}) > len(SAMPLE) // 2


def test_different_seeds_give_different_answers(client: TestClient, configure: Configure) -> None:
    configure(null_rate=0, seed=1)
    with_1 = [detect(client, data) for data in SAMPLE[:5]]

    configure(null_rate=0, seed=2)
    with_2 = [detect(client, data) for data in SAMPLE[:5]]

    assert with_1 != with_2


def test_latency_delays_each_answer(client: TestClient, configure: Configure) -> None:
    configure(latency_ms=200)
    started = time.perf_counter()

    detect(client, SAMPLE[0])

    assert time.perf_counter() - started >= 0.2


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"plain text, no pixels", id="text"),
        pytest.param(b"", id="empty"),
        pytest.param(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20, id="broken-png-header"),
    ],
)
def test_not_an_image_is_refused_with_422(
    data: bytes, client: TestClient, configure: Configure
) -> None:
    configure()

    response = client.post("/process_image/", files={"image": ("x.png", data, "image/png")})

    assert response.status_code == 422
    assert "not an image" in response.json()["detail"]


def png_header(width: int, height: int) -> bytes:
    """A PNG that declares a size in its header and holds no pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


def test_image_declaring_a_huge_size_is_refused_with_422(configure: Configure) -> None:
    configure()
    data = png_header(40_000, 40_000)

    with TestClient(mlmock.main.app, raise_server_exceptions=False) as client:
        response = client.post("/process_image/", files={"image": ("x.png", data, "image/png")})

    assert response.status_code == 422


def test_request_without_an_image_field_is_refused(
    client: TestClient, configure: Configure
) -> None:
    configure()

    response = client.post("/process_image/", files={"photo": ("x.png", SAMPLE[0], "image/png")})

    assert response.status_code == 422


def test_health_answers_ok(client: TestClient) -> None:
    response = client.get("/health")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
