"""image.annotate@v1: the box is drawn where the model saw the car, on a copy of the image."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest
from PIL import Image
from sqlalchemy.orm import Session

from common.bootstrap import CAR_PIPELINE_ID
from common.pipeline import CarDetection, Detection, StepContext, StepError
from common.pipeline.steps.image_annotate import AnnotateImage, AnnotateParams, annotate_image
from common.repositories import ImageRepository
from common.settings import get_settings
from tests import images
from tests.helpers import pixels
from tests.helpers.pixels import GREEN, RED
from tests.rows import add_job

GREY = (128, 128, 128)
# A drawn line's pixels, after JPEG, within this of its colour in every channel.
LINE_TOLERANCE = 40


def opened(data: bytes) -> Image.Image:
    return pixels.opened(data, "RGB")


def near(pixel: object, colour: tuple[int, ...], tolerance: int = LINE_TOLERANCE) -> bool:
    assert isinstance(pixel, tuple)  # every result is RGB
    return pixels.near(pixel, colour, tolerance)


def box(x: int, y: int, width: int, height: int) -> Detection:
    return Detection(top_left_x=x, top_left_y=y, width=width, height=height, conf=0.9, label=1)


@pytest.fixture
def db(session: Session) -> Iterator[Session]:
    try:
        yield session
    finally:
        session.rollback()


def test_box_edges_are_drawn_and_inside_and_outside_are_untouched() -> None:
    data = images.solid(200, 150, GREY)

    img = opened(annotate_image(data, box(40, 30, 100, 80), color="#ff0000", width=4))

    # The outline is inside the box: x 40..43 and 136..139, y 30..33 and 106..109.
    for edge in [(41, 70), (138, 70), (90, 31), (90, 108)]:
        assert near(img.getpixel(edge), RED), edge
    for inside in [(90, 70), (50, 45), (125, 95)]:
        assert near(img.getpixel(inside), GREY), inside
    for outside in [(20, 70), (160, 70), (90, 15), (90, 125)]:
        assert near(img.getpixel(outside), GREY), outside


def test_colour_and_line_width_are_the_params() -> None:
    data = images.solid(100, 100, GREY)

    img = opened(annotate_image(data, box(10, 10, 80, 80), color="#00ff00", width=10))

    assert near(img.getpixel((15, 50)), GREEN)  # 5 px in: within a 10 px line
    assert near(img.getpixel((25, 50)), GREY)


def test_box_reaching_past_the_image_is_cut_at_its_edge() -> None:
    data = images.solid(100, 100, GREY)

    img = opened(annotate_image(data, box(60, 60, 200, 200), width=3))

    assert img.size == (100, 100)
    assert near(img.getpixel((61, 80)), RED)
    assert near(img.getpixel((80, 61)), RED)
    assert near(img.getpixel((98, 98)), GREY)  # the far edges fall off the image


def test_no_detection_gives_the_image_without_a_box() -> None:
    data = images.solid(120, 90, GREY)

    img = opened(annotate_image(data, None))

    assert img.size == (120, 90)
    assert all(near(img.getpixel((x, y)), GREY, 8) for x in range(0, 120, 7) for y in (0, 45, 89))


def test_colour_must_be_hex() -> None:
    with pytest.raises(ValueError, match="pattern"):
        AnnotateParams(color="red")


def test_undecodable_image_fails_the_step() -> None:
    with pytest.raises(StepError, match="cannot decode the image"):
        annotate_image(b"\xff\xd8 not really a jpeg", box(0, 0, 1, 1))


@pytest.mark.parametrize("detection", [box(5, 5, 20, 20), None], ids=["box", "no-car"])
def test_step_stores_the_annotated_variant_and_returns_the_data_unchanged(
    db: Session, detection: Detection | None
) -> None:
    job = add_job(db, CAR_PIPELINE_ID, ["image.annotate@v1"])
    data = CarDetection(
        image=images.solid(64, 48, GREY, "JPEG"), content_type="image/jpeg", detection=detection
    )
    with httpx.Client() as http:
        ctx = StepContext(job_id=job.id, session=db, http=http, settings=get_settings())

        result = AnnotateImage(AnnotateParams()).run(data, ctx)

    assert result is data  # the processed image is not replaced
    stored = ImageRepository(db).get(job.id, "annotated")
    assert stored is not None
    assert stored.content_type == "image/jpeg"
    annotated = opened(stored.data)
    assert annotated.size == (64, 48)
    assert near(annotated.getpixel((6, 15)), RED if detection else GREY)


def test_step_run_twice_replaces_its_variant(db: Session) -> None:
    job = add_job(db, CAR_PIPELINE_ID, ["image.annotate@v1"])
    data = CarDetection(image=images.solid(64, 48, GREY), content_type="image/png")
    step = AnnotateImage(AnnotateParams())
    with httpx.Client() as http:
        ctx = StepContext(job_id=job.id, session=db, http=http, settings=get_settings())
        step.run(data, ctx)
        step.run(data.model_copy(update={"detection": box(0, 0, 64, 48)}), ctx)

    stored = ImageRepository(db).get(job.id, "annotated")
    assert stored is not None
    assert near(opened(stored.data).getpixel((1, 24)), RED)
    assert uuid.UUID(str(stored.job_id)) == job.id
