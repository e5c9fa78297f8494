"""image.grayscale, image.crop, image.blur and image.resize on real images made with Pillow."""

from __future__ import annotations

import io
import uuid

import httpx
import pytest
from PIL import ExifTags, Image, ImageStat
from sqlalchemy.orm import Session

from common.pipeline import (
    CarDetection,
    Detection,
    PipelineConfigError,
    StepContext,
    StepError,
    build_pipeline,
    default_registry,
)
from common.pipeline.steps.image_blur import BlurImage, BlurParams, blur_image
from common.pipeline.steps.image_crop import CropImage, CropParams, crop_image
from common.pipeline.steps.image_fit import Resample
from common.pipeline.steps.image_grayscale import grayscale_image
from common.pipeline.steps.image_resize import resize_image
from common.settings import get_settings
from tests import images

RED = (255, 0, 0)
GREEN = (0, 255, 0)
BLUE = (0, 0, 255)
WHITE = (255, 255, 255)
BLACK = (0, 0, 0)


def opened(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    assert img.format == "JPEG"
    return img


def near(pixel: object, colour: tuple[int, ...], tolerance: int = 12) -> bool:
    pixel = pixel if isinstance(pixel, tuple) else (pixel,)
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, colour, strict=True))


def quadrants(width: int = 200, height: int = 100) -> Image.Image:
    """Top left red, top right green, bottom left blue, bottom right white."""
    img = Image.new("RGB", (width, height), WHITE)
    half_w, half_h = width // 2, height // 2
    img.paste(RED, (0, 0, half_w, half_h))
    img.paste(GREEN, (half_w, 0, width, half_h))
    img.paste(BLUE, (0, half_h, half_w, height))
    return img


def run(step: object, data: CarDetection) -> CarDetection:
    with httpx.Client() as http, Session() as session:
        ctx = StepContext(job_id=uuid.uuid4(), session=session, http=http, settings=get_settings())
        result = step.run(data, ctx)  # type: ignore[attr-defined]
    assert isinstance(result, CarDetection)
    return result


# --- grayscale --------------------------------------------------------------------------------


def test_grayscale_gives_a_one_channel_jpeg_with_the_luma_of_each_colour() -> None:
    data = images.encode(quadrants(), "PNG")

    result = opened(grayscale_image(data))

    assert result.mode == "L"
    assert result.size == (200, 100)
    # ITU-R 601-2 luma: red 76, green 150, blue 29, white 255.
    assert near(result.getpixel((25, 25)), (76,), tolerance=6)
    assert near(result.getpixel((175, 25)), (150,), tolerance=6)
    assert near(result.getpixel((25, 75)), (29,), tolerance=6)
    assert near(result.getpixel((175, 75)), (255,), tolerance=6)


def test_grayscale_keeps_a_transparent_png_white_and_turns_an_exif_rotated_jpeg_upright() -> None:
    rotated = images.jpeg(300, 200, orientation=6)
    transparent = images.encode(Image.new("RGBA", (20, 20), (0, 0, 0, 0)), "PNG")

    assert opened(grayscale_image(rotated)).size == (200, 300)
    assert near(opened(grayscale_image(transparent)).getpixel((10, 10)), (255,), tolerance=3)


# --- crop -------------------------------------------------------------------------------------


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


# --- blur -------------------------------------------------------------------------------------


def test_blur_softens_an_edge_in_proportion_to_the_radius() -> None:
    # Black left half, white right half: the edge is at x = 100.
    img = Image.new("RGB", (200, 60), BLACK)
    img.paste(WHITE, (100, 0, 200, 60))
    data = images.encode(img, "PNG")

    slight, strong = opened(blur_image(data, radius=1)), opened(blur_image(data, radius=8))

    # Beside the edge, a strong blur mixes the two sides; far from it, nothing changes.
    assert near(slight.getpixel((90, 30)), BLACK, tolerance=8)
    assert 30 < strong.getpixel((95, 30))[0] < 128 < strong.getpixel((105, 30))[0] < 225
    assert near(strong.getpixel((10, 30)), BLACK, tolerance=8)
    assert near(strong.getpixel((190, 30)), WHITE, tolerance=8)


def test_blur_keeps_size_and_mean_and_lowers_the_noise() -> None:
    data = images.png(320, 240, seed=3)
    before = ImageStat.Stat(Image.open(io.BytesIO(data)).convert("L"))

    result = opened(blur_image(data, radius=3))

    after = ImageStat.Stat(result.convert("L"))
    assert result.size == (320, 240)
    assert abs(after.mean[0] - before.mean[0]) < 3
    assert after.stddev[0] < before.stddev[0]


def test_blur_radius_must_be_positive() -> None:
    with pytest.raises(ValueError, match="greater than 0"):
        BlurParams(radius=0)


def test_blur_step_gives_a_jpeg() -> None:
    data = CarDetection(image=images.png(64, 48), content_type="image/png")

    result = run(BlurImage(BlurParams(radius=1.5)), data)

    assert result.content_type == "image/jpeg"
    assert opened(result.image).size == (64, 48)


# --- resize -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "target"),
    [((1920, 1080), (640, 640)), ((100, 50), (300, 400)), ((640, 640), (640, 640))],
)
def test_resize_gives_exactly_the_size_asked_for(
    size: tuple[int, int], target: tuple[int, int]
) -> None:
    result = opened(resize_image(images.jpeg(*size), *target))

    assert result.size == target


def test_resize_stretches_without_keeping_the_aspect() -> None:
    data = images.encode(quadrants(200, 100), "PNG")

    result = opened(resize_image(data, 100, 100))

    assert near(result.getpixel((25, 25)), RED)
    assert near(result.getpixel((75, 75)), WHITE)


def test_resize_filter_is_applied() -> None:
    # A one-pixel checkerboard enlarged: nearest keeps hard black and white, bilinear greys.
    board = Image.new("L", (4, 4))
    board.putdata([255 * ((x + y) % 2) for y in range(4) for x in range(4)])
    data = images.encode(board, "PNG")

    nearest = opened(resize_image(data, 64, 64, Resample.NEAREST, quality=95))
    bilinear = opened(resize_image(data, 64, 64, Resample.BILINEAR, quality=95))

    assert ImageStat.Stat(nearest.convert("L")).stddev[0] > 100
    assert ImageStat.Stat(bilinear.convert("L")).stddev[0] < 100


# --- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "operation",
    [
        pytest.param(lambda d: grayscale_image(d), id="grayscale"),
        pytest.param(lambda d: crop_image(d, 0, 0, 10, 10), id="crop"),
        pytest.param(lambda d: blur_image(d), id="blur"),
        pytest.param(lambda d: resize_image(d, 10, 10), id="resize"),
    ],
)
@pytest.mark.parametrize(
    ("data", "detail"),
    [
        pytest.param(b"not an image", "cannot identify", id="text"),
        pytest.param(images.jpeg(800, 600)[:2000], "truncated", id="truncated-jpeg"),
    ],
)
def test_undecodable_data_fails_each_step_like_image_fit(
    operation: object, data: bytes, detail: str
) -> None:
    with pytest.raises(StepError, match=f"cannot decode the image: .*{detail}"):
        operation(data)  # type: ignore[operator]
