"""Photos as they come from the field, through the real API, worker and model mock: turned
upright once whatever says how, never failed for their metadata, and failures told in words."""

from __future__ import annotations

import httpx
import pytest
from PIL import ExifTags

from tests import images
from tests.helpers.api import submit_ok
from tests.helpers.photos import XMP_6, red_left, tiff_with, with_jpeg_segment
from tests.helpers.product import create_pipeline, processed_size
from tests.system import wait_for_job

FIT_640x320 = [
    {"type": "image.fit@v1", "params": {"max_width": 640, "max_height": 320}},
    {"type": "model.detect_car@v1"},
    {"type": "storage.save_car_detection@v1"},
]


@pytest.mark.parametrize(
    "tags",
    [
        pytest.param({ExifTags.Base.Orientation: (6, 3)}, id="orientation-tag"),
        pytest.param({700: (XMP_6, 1)}, id="orientation-in-xmp-only"),
    ],
)
def test_a_sideways_tiff_comes_out_upright_and_inside_the_box(
    api: httpx.Client, tags: dict[int, tuple[object, int]]
) -> None:
    pipeline_id = create_pipeline(api, {"datatype": "CarDetection", "steps": FIT_640x320})

    job = wait_for_job(api, submit_ok(api, tiff_with(red_left(), tags), pipeline_id, "a.tif"))

    assert job["status"] == "succeeded", job["error"]
    assert processed_size(api, job["job_id"]) == (213, 320)


@pytest.mark.parametrize(
    ("marker", "body"),
    [
        pytest.param(0xE1, b"Exif\x00\x00https://example.com/photo.jpg", id="exif-not-tiff"),
        pytest.param(0xE2, b"ICC_PROFILE\x00\x01\x01", id="icc-header-only"),
        pytest.param(0xE2, b"ICC_PROFILE\x00", id="icc-header-cut"),
    ],
)
def test_a_photo_with_unreadable_metadata_succeeds(
    api: httpx.Client, marker: int, body: bytes
) -> None:
    data = with_jpeg_segment(images.jpeg(1920, 1080), marker, body)

    job = wait_for_job(api, submit_ok(api, data))

    assert job["status"] == "succeeded", job["error"]
    assert processed_size(api, job["job_id"]) == (640, 360)


def test_a_failure_reason_holds_no_python_repr(api: httpx.Client) -> None:
    # Without image.fit the upload goes to the model server as it is; the mock cannot open it
    # and says so with Pillow's message, which names a file object by its repr.
    pipeline_id = create_pipeline(api, {"datatype": "CarDetection", "steps": FIT_640x320[1:]})
    data = with_jpeg_segment(images.jpeg(320, 240), 0xE2, b"ICC_PROFILE\x00")

    job = wait_for_job(api, submit_ok(api, data, pipeline_id))

    assert job["status"] == "failed"
    assert "model server refused the image" in job["error"]
    for message in (job["error"], job["steps"][0]["error"]):
        assert "0x" not in message
        assert "object at" not in message
