"""image.crop on real images made with Pillow."""

from __future__ import annotations

import pytest
from PIL import ExifTags, Image

from common.pipeline import (
    CarDetection,
    Detection,
    PipelineConfigError,
    StepError,
    build_pipeline,
    default_registry,
)
from common.pipeline.steps.image_crop import CropImage, CropParams, crop_image
from tests import images
from tests.helpers.pixels import BLUE, GREEN, RED, WHITE, near, opened, quadrants, run


def test_crop_keeps_exactly_the_box() -> None:
    data = images.encode(quadrants(), "PNG")

    result = opened(crop_image(data, left=100, top=0, width=100, height=50))

    assert result.size == (100, 50)
    assert near(result.convert("RGB").getpixel((50, 25)), GREEN)


def test_crop_box_is_taken_on_the_image_as_it_is_shown() -> None:
    # Stored 400x200, shown (orientation 6: turned clockwise) as 200x400 with red on top.
    stored = Image.new("RGB", (400, 200), RED)
    stored.paste(BLUE, (200, 0, 400, 200))
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    data = images.encode(stored, "JPEG", quality=95, exif=exif.tobytes())

    result = opened(crop_image(data, left=0, top=220, width=200, height=180))

    assert result.size == (200, 180)
    assert near(result.getpixel((100, 90)), BLUE)


@pytest.mark.parametrize(
    ("box", "reason"),
    [
        pytest.param((150, 0, 100, 50), "reaches past the 200x100 image", id="past-right"),
        pytest.param((0, 60, 10, 50), "reaches past the 200x100 image", id="past-bottom"),
        pytest.param((200, 0, 10, 10), "lies wholly outside the 200x100 image", id="outside"),
    ],
)
def test_crop_box_outside_the_image_fails_naming_the_box(
    box: tuple[int, int, int, int], reason: str
) -> None:
    data = images.encode(quadrants(), "PNG")
    left, top, width, height = box

    with pytest.raises(StepError) as caught:
        crop_image(data, left, top, width, height)

    named = f"crop box left={left} top={top} width={width} height={height}"
    assert str(caught.value).startswith(f"{named} {reason}")


def test_crop_with_clamp_cuts_the_box_down_to_the_image() -> None:
    data = images.encode(quadrants(), "PNG")

    result = opened(crop_image(data, left=150, top=50, width=500, height=500, clamp=True))

    assert result.size == (50, 50)
    assert near(result.getpixel((25, 25)), WHITE)


def test_crop_with_clamp_still_fails_for_a_box_wholly_outside() -> None:
    data = images.encode(quadrants(), "PNG")

    with pytest.raises(StepError, match="wholly outside"):
        crop_image(data, left=0, top=100, width=10, height=10, clamp=True)


def test_crop_needs_a_box_in_the_config() -> None:
    raw = {"datatype": "ImageData", "steps": [{"type": "image.crop@v1", "params": {"left": 5}}]}

    with pytest.raises(PipelineConfigError) as caught:
        build_pipeline(raw, default_registry())

    reasons = [issue.reason for issue in caught.value.issues]
    assert reasons == ["parameter width: Field required", "parameter height: Field required"]


def test_crop_step_replaces_the_image_and_keeps_the_detection() -> None:
    detection = Detection(top_left_x=1, top_left_y=2, width=3, height=4, conf=0.5, label=1)
    data = CarDetection(image=images.png(320, 240), content_type="image/png", detection=detection)

    result = run(CropImage(CropParams(left=10, top=10, width=64, height=32)), data)

    assert result.content_type == "image/jpeg"
    assert result.detection == detection
    assert opened(result.image).size == (64, 32)
