"""The car detections: one per job of a car pipeline, the model's answer as the seed stored it."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select

from common.models import CarDetectionRow, utcnow
from common.pipeline.datatypes import Detection
from common.repositories._base import Repository


class CarDetectionRepository(Repository):
    def save(self, job_id: uuid.UUID, image_id: int | None, detection: Detection | None) -> None:
        values: dict[str, Any] = {
            "job_id": job_id,
            "image_id": image_id,
            "top_left_x": None,
            "top_left_y": None,
            "width": None,
            "height": None,
            "conf": None,
            "label": 0,
            "created_at": utcnow(),
        }
        if detection is not None:
            values.update(detection.model_dump())
        self._upsert(
            CarDetectionRow,
            values,
            key=("job_id",),
            update=[name for name in values if name != "job_id"],
        )

    def for_job(self, job_id: uuid.UUID) -> CarDetectionRow | None:
        return self.session.scalar(select(CarDetectionRow).where(CarDetectionRow.job_id == job_id))

    def for_jobs(self, job_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, CarDetectionRow]:
        ids = list(job_ids)
        if not ids:
            return {}
        rows = self.session.scalars(select(CarDetectionRow).where(CarDetectionRow.job_id.in_(ids)))
        return {row.job_id: row for row in rows}
