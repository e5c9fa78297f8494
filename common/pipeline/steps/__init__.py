"""Built-in steps, one per file. Adding a step: write its file, then add it to BUILTIN_STEPS."""

from common.pipeline.steps.detect_car import DetectCar
from common.pipeline.steps.image_fit import FitImage
from common.pipeline.steps.save_detection import SaveCarDetection

BUILTIN_STEPS = (
    FitImage,
    DetectCar,
    SaveCarDetection,
)
