"""What the pixel steps share (common/pipeline/steps/_imaging.py): bytes that do not decode
fail each of grayscale, crop, blur and resize as they fail image.fit."""

from __future__ import annotations

import pytest

from common.pipeline import StepError
from common.pipeline.steps.image_blur import blur_image
from common.pipeline.steps.image_crop import crop_image
from common.pipeline.steps.image_grayscale import grayscale_image
from common.pipeline.steps.image_resize import resize_image
from tests import images


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
