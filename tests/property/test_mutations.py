"""Mutated real images: the gateway's check and the fit step fail only in the ways they declare."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from api.errors import ApiError
from api.uploads import check_image
from common.imagetypes import CorruptImageError, ImageFormatError, read_header
from common.pipeline.step import StepError
from common.pipeline.steps.image_fit import fit_image
from common.settings import Settings
from tests import images

PHOTO = images.photo(48, 32, seed=21)
SEEDS = [
    images.encode(PHOTO, "JPEG", quality=80),
    images.encode(PHOTO, "JPEG", progressive=True),
    images.encode(PHOTO, "PNG"),
    images.encode(PHOTO.convert("P"), "PNG", transparency=0),
    images.encode(PHOTO, "GIF", save_all=True, append_images=[PHOTO.rotate(90)]),
    images.encode(PHOTO, "WEBP"),
    images.encode(PHOTO, "WEBP", lossless=True),
    images.encode(PHOTO, "BMP"),
    images.encode(PHOTO, "TIFF"),
    images.encode(PHOTO, "TIFF", compression="tiff_lzw"),
]
# Small limits, so that a mutated size field cannot make a test decode a huge image.
LIMITS = Settings(max_image_pixels=200_000, max_image_side=4096)
PROFILE = settings(
    max_examples=60,
    deadline=2000,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A seed image with bytes flipped, overwritten, inserted, deleted, or the file cut short."""
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data) - 1))
        kind = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate"]))
        if kind == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set":
            data[at] = draw(st.sampled_from([0x00, 0xFF, 0x7F, 0x80, 0x01]))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 16))]
        else:
            del data[at:]
        if not data:
            break
    return bytes(data)


@pytest.fixture(autouse=True)
def worker_pixel_limit() -> Iterator[None]:
    """As a worker would be configured: Pillow refuses what the gateway would."""
    saved = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = LIMITS.max_image_pixels // 2
    yield
    Image.MAX_IMAGE_PIXELS = saved


@PROFILE
@given(mutated())
def test_gateway_check_only_answers_or_refuses_with_a_client_error(data: bytes) -> None:
    try:
        header = check_image(data, LIMITS)
    except ApiError as exc:
        status = exc.status_code
    else:
        status = 202
        assert 0 < header.width <= LIMITS.max_image_side
        assert 0 < header.height <= LIMITS.max_image_side
    assert status in (202, 413, 415, 422)


@PROFILE
@given(st.binary(max_size=256))
def test_header_reader_raises_only_its_own_errors_on_arbitrary_bytes(data: bytes) -> None:
    with contextlib.suppress(ImageFormatError, CorruptImageError):
        read_header(data)


@PROFILE
@given(mutated())
def test_fit_step_raises_only_step_error(data: bytes) -> None:
    try:
        out = fit_image(data, max_width=64, max_height=64)
    except StepError:
        return
    with Image.open(io.BytesIO(out)) as result:
        assert result.format == "JPEG"
        assert result.width <= 64
        assert result.height <= 64


@PROFILE
@given(mutated())
def test_what_the_gateway_accepts_the_fit_step_decodes_or_fails_cleanly(data: bytes) -> None:
    try:
        check_image(data, LIMITS)
    except ApiError:
        return
    with contextlib.suppress(StepError):
        fit_image(data, max_width=64, max_height=64)
