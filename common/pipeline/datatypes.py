"""Data types: what a pipeline's steps pass to each other. All carry the image bytes."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ImageData(BaseModel):
    """Base of every data type: the image a pipeline works on."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    image: bytes = Field(repr=False)
    content_type: str = "application/octet-stream"

    def fields_without_image(self) -> dict[str, Any]:
        """The JSON-safe part kept between steps; the bytes are stored apart."""
        return self.model_dump(mode="json", exclude={"image"})


class Detection(BaseModel):
    """One detected object, in the model server's own keys."""

    model_config = ConfigDict(extra="forbid")

    top_left_x: int
    top_left_y: int
    width: int = Field(ge=0)
    height: int = Field(ge=0)
    conf: float = Field(ge=0, le=1)
    label: int


class Notifiable(ImageData):
    """An image whose result may be sent to a webhook; a failed delivery is kept here."""

    webhook_error: str | None = None


class CarDetection(Notifiable):
    """An image and the model's answer about it; `detection` is None when no car was found."""

    detection: Detection | None = None
    model_answered: bool = False


class ImageStats(Notifiable):
    """An image and figures measured on its pixels (None until image.stats@v1 ran)."""

    width: int | None = None
    height: int | None = None
    mean_brightness: float | None = Field(None, ge=0, le=255)
    brightness_stddev: float | None = Field(None, ge=0)
