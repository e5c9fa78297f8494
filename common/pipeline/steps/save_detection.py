"""storage.save_car_detection@v1: record the answer and the image it was made on."""

from __future__ import annotations

from common.pipeline.datatypes import CarDetection
from common.pipeline.step import NoOutput, Step, StepContext, StepError, StepManifest, StepParams
from common.repositories import CarDetectionRepository, ImageRepository


class SaveCarDetection(Step[CarDetection, StepParams]):
    manifest = StepManifest(
        type_id="storage.save_car_detection@v1",
        description=(
            "Save the detection (label 0 and no box when there is no car) with the job's "
            "processed image as its result; saving again replaces, never duplicates."
        ),
        accepts=CarDetection,
        output=NoOutput,
        aliases=("SaveCarDetection",),
        reads_image=False,
        io_bound=True,
    )

    def run(self, data: CarDetection, ctx: StepContext) -> CarDetection:
        image_id = ctx.image_id
        if image_id is None:
            image = ImageRepository(ctx.session).current(ctx.job_id)
            if image is None:
                raise StepError("the job has no stored image")
            image_id = image.id
        CarDetectionRepository(ctx.session).save(ctx.job_id, image_id, data.detection)
        return data
