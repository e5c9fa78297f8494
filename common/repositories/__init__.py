"""Repositories: the only code that queries tables, one module per aggregate. Each wraps one
session; callers commit."""

from common.repositories.detections import CarDetectionRepository
from common.repositories.images import ORIGINAL, PROCESSED, ImageRepository, StoredImage
from common.repositories.jobs import JobFilter, JobRepository, OutputKind, OutputMatch
from common.repositories.lifecycle import QueuedJob
from common.repositories.pipelines import PipelineRepository
from common.repositories.steps import StepState

__all__ = [
    "ORIGINAL",
    "PROCESSED",
    "CarDetectionRepository",
    "ImageRepository",
    "JobFilter",
    "JobRepository",
    "OutputKind",
    "OutputMatch",
    "PipelineRepository",
    "QueuedJob",
    "StepState",
    "StoredImage",
]
