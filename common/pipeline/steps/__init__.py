"""Built-in steps, one per file. Adding a step: write its file, then add it to BUILTIN_STEPS."""

from common.pipeline.steps.detect_car import DetectCar
from common.pipeline.steps.image_annotate import AnnotateImage
from common.pipeline.steps.image_blur import BlurImage
from common.pipeline.steps.image_crop import CropImage
from common.pipeline.steps.image_fit import FitImage
from common.pipeline.steps.image_grayscale import GrayscaleImage
from common.pipeline.steps.image_resize import ResizeImage
from common.pipeline.steps.image_stats import MeasureImage
from common.pipeline.steps.min_confidence import MinConfidence
from common.pipeline.steps.notify_webhook import NotifyWebhook
from common.pipeline.steps.save_detection import SaveCarDetection

BUILTIN_STEPS = (
    FitImage,
    DetectCar,
    SaveCarDetection,
    ResizeImage,
    CropImage,
    GrayscaleImage,
    BlurImage,
    MeasureImage,
    MinConfidence,
    AnnotateImage,
    NotifyWebhook,
)
