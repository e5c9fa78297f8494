"""POST /jobs with hostile and broken input: one error shape, and nothing stored or queued."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests import images
from tests.helpers.api import (
    assert_error,
    queue_length,
    spy_on_queue,
    stored_rows,
    submit,
    wait_until_idle,
)
from tests.hostile import corpus as c
from tests.system import wait_for_job

Files = list[tuple[str, tuple[str, bytes, str]]]


def file_case(
    case_id: str, data: bytes, status: int, code: str, name: str = "photo.jpg", **form: str
) -> Any:
    files: Files = [("image", (name, data, "image/jpeg"))]
    return pytest.param(files, {"pipeline_id": "1", **form}, status, code, id=case_id)


def form_case(case_id: str, files: Files, data: dict[str, Any], status: int, code: str) -> Any:
    return pytest.param(files, data, status, code, id=case_id)


PHOTO: Files = [("image", ("photo.jpg", c.JPEG, "image/jpeg"))]
NOT_IMAGE, CORRUPT, TOO_BIG = (
    "unsupported_image_type",
    "corrupt_image",
    "image_dimensions_too_large",
)

CORPUS = [
    # Not images at all, whatever their name says
    file_case("zero-byte", b"", 422, "empty_image"),
    file_case("one-byte", b"\xff", 415, NOT_IMAGE),
    file_case("text-named-jpg", c.TEXT, 415, NOT_IMAGE),
    file_case("html", c.HTML, 415, NOT_IMAGE, name="x.html"),
    file_case("svg", c.SVG, 415, NOT_IMAGE, name="x.svg"),
    file_case("pdf", c.PDF, 415, NOT_IMAGE, name="x.pdf"),
    file_case("zip", c.ZIP, 415, NOT_IMAGE, name="x.zip"),
    file_case("elf-executable", c.ELF, 415, NOT_IMAGE),
    file_case("riff-wave-named-webp", c.WAV, 415, NOT_IMAGE, name="x.webp"),
    file_case("bmp-magic-on-text", b"BMW X5 service history, oil changed\n", 415, NOT_IMAGE),
    file_case("jpeg-magic-only", b"\xff\xd8\xff", 422, CORRUPT),
    file_case("png-signature-only", b"\x89PNG\r\n\x1a\n", 422, CORRUPT),
    # Truncated or structurally broken
    file_case("jpeg-truncated-half", c.cut(c.JPEG, 0.5), 422, CORRUPT),
    file_case("jpeg-without-eoi", c.JPEG[:-2], 422, CORRUPT),
    file_case("jpeg-zero-height", c.jpeg_with_size(64, 0), 422, CORRUPT),
    file_case("png-truncated-half", c.cut(c.PNG, 0.5), 422, CORRUPT),
    file_case("png-without-iend", c.png(64, 48, iend=False), 422, CORRUPT),
    file_case("png-corrupt-ihdr", c.png(64, 48, ihdr_crc=0xDEADBEEF), 422, CORRUPT),
    file_case("png-zero-width", c.png(0, 48), 422, CORRUPT),
    file_case("gif-truncated-half", c.cut(c.GIF, 0.5), 422, CORRUPT),
    file_case("gif-without-trailer", c.GIF[:-1], 422, CORRUPT),
    file_case("webp-truncated", c.cut(c.WEBP, 0.7), 422, CORRUPT),
    file_case("bmp-rows-missing", c.cut(c.BMP, 0.6), 422, CORRUPT),
    file_case("tiff-truncated", c.cut(c.TIFF, 0.5), 422, CORRUPT),
    # Absurd dimensions and decompression bombs, read from a few hundred bytes of header
    file_case("png-40000x1", c.png(40000, 1), 413, TOO_BIG),
    file_case("png-50-megapixels-plus-1", c.png(3561, 14041), 413, TOO_BIG),
    file_case("png-bomb-65535x65535", c.png(65535, 65535), 413, TOO_BIG),
    file_case("jpeg-bomb-header", c.jpeg_with_size(65000, 65000), 413, TOO_BIG),
    file_case("gif-bomb-header", c.gif_with_size(65535, 65535), 413, TOO_BIG),
    file_case("webp-bomb-canvas", c.webp_vp8x(16384, 16384), 413, TOO_BIG),
    # Too many bytes
    file_case("21-MiB-upload", b"\xff\xd8\xff" + bytes(21 * c.MiB), 413, "image_too_large"),
    # The form itself
    form_case("wrong-field-name", [("file", ("p.jpg", c.JPEG, "image/jpeg"))], {"pipeline_id": "1"},
              422, "invalid_request"),
    form_case("extra-unknown-field", PHOTO, {"pipeline_id": "1", "callback": "http://x"},
              422, "unexpected_field"),
    form_case("two-images", [*PHOTO, *PHOTO], {"pipeline_id": "1"}, 422, "unexpected_field"),
    form_case("two-pipeline-ids", PHOTO, {"pipeline_id": ["1", "1"]}, 422, "unexpected_field"),
    form_case("no-fields", [], {"x": "y"}, 422, "invalid_request"),
    form_case("image-as-text", [], {"image": "not a file", "pipeline_id": "1"},
              422, "invalid_request"),
    *(
        form_case(f"pipeline_id={value[:12]!r}", PHOTO, {"pipeline_id": value},
                  422, "invalid_request")
        for value in ("", "0", "-1", "-2147483648", "1.5", "1e3", "0x10", "2147483648",
                      "1" * 400, "NaN", "one")
    ),
    form_case("unknown-pipeline", PHOTO, {"pipeline_id": "2147483647"}, 404, "pipeline_not_found"),
]  # fmt: skip


@pytest.fixture
def quiet() -> dict[str, int]:
    """No job in flight (so only the request under test could add rows); the rows before it."""
    wait_until_idle()
    return stored_rows()


@pytest.mark.parametrize(("files", "data", "status", "code"), CORPUS)
def test_refused_upload_answers_error_and_stores_and_queues_nothing(
    api: httpx.Client,
    quiet: dict[str, int],
    files: Files,
    data: dict[str, Any],
    status: int,
    code: str,
) -> None:
    # When
    with spy_on_queue() as spy:
        response = api.post("/jobs", files=files or None, data=data)
        published = spy.collect()

    # Then: the one error shape, with a message to act on
    error = assert_error(response, status, code)
    assert len(error["message"]) > 20, error
    assert "job_id" not in error
    # Then: no row, and no task published to the queue (nor waiting in it)
    assert stored_rows() == quiet
    assert published == []
    assert queue_length() == 0


def test_queue_spy_sees_the_task_an_accepted_upload_publishes(
    api: httpx.Client, quiet: dict[str, int]
) -> None:
    # Given: the spy the refusals rely on
    with spy_on_queue() as spy:
        # When
        response = submit(api, images.jpeg(64, 48, seed=2))
        published = spy.collect()

    # Then
    assert response.status_code == 202, response.text
    job_id = response.json()["job_id"]
    # The gateway sends the job's first step, which carries the rest of the chain (the worker
    # sends the later steps, maybe already within the spy's window).
    first_steps = [e["args"] for e in published if e["task"] == "pipeline.step.image.fit@v1"]
    assert first_steps == [repr((job_id, 1))]
    assert all(e["task"].startswith("pipeline.step.") for e in published)
    wait_for_job(api, job_id)


def test_chunked_upload_over_the_limit_is_cut_off_with_413(
    api: httpx.Client, quiet: dict[str, int]
) -> None:
    # Given: a 21 MiB multipart body without Content-Length, sent in 64 KiB chunks
    def body() -> Iterator[bytes]:
        yield (
            b'--xyz\r\nContent-Disposition: form-data; name="pipeline_id"\r\n\r\n1\r\n'
            b'--xyz\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\n'
            b"Content-Type: image/jpeg\r\n\r\n\xff\xd8\xff"
        )
        for _ in range(21 * 16):
            yield bytes(64 * 1024)
        yield b"\r\n--xyz--\r\n"

    # When
    with spy_on_queue() as spy:
        response = api.post(
            "/jobs",
            content=body(),
            headers={"Content-Type": "multipart/form-data; boundary=xyz"},
        )
        published = spy.collect()

    # Then
    assert "content-length" not in response.request.headers
    assert_error(response, 413, "image_too_large")
    assert stored_rows() == quiet
    assert published == []


@pytest.mark.parametrize(
    ("data", "status", "code"),
    [
        (c.TEXT, 415, NOT_IMAGE),
        (c.png(64, 48, ihdr_crc=0), 422, CORRUPT),
        (c.png(3561, 14041), 413, TOO_BIG),
        (b"\xff\xd8\xff" + bytes(21 * c.MiB), 413, "image_too_large"),
    ],
    ids=["text", "corrupt-png", "50-megapixels-plus-1", "21-MiB"],
)
def test_earlier_interface_refuses_the_same_way(
    api: httpx.Client, quiet: dict[str, int], data: bytes, status: int, code: str
) -> None:
    # When
    with spy_on_queue() as spy:
        response = api.post(
            "/process_image/",
            params={"pipeline_id": "1"},
            files={"image": ("photo.jpg", data, "image/jpeg")},
        )
        published = spy.collect()

    # Then
    assert_error(response, status, code)
    assert stored_rows() == quiet
    assert published == []
