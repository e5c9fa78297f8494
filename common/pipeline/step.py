"""The step interface: a manifest that describes a step, and the class that runs it."""

from __future__ import annotations

import re
import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

from common.pipeline.datatypes import ImageData

if TYPE_CHECKING:
    import httpx
    from sqlalchemy.orm import Session

    from common.settings import Settings

TYPE_ID = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+@v[0-9]+$")


class StepParams(BaseModel):
    """Parameters of a step; a step with none uses this class as it is."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class StepOutput(BaseModel):
    """What a step reports about its run: kept on the job's step, shown by GET /jobs/{id}."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class NoOutput(StepOutput):
    """Declared by a step that reports nothing (its output is null); never instantiated."""


NO_OUTPUT_SCHEMA: dict[str, Any] = {
    "type": "null",
    "description": "This step reports nothing: its output is null.",
}


@dataclass(frozen=True)
class StepManifest:
    type_id: str
    description: str
    accepts: type[ImageData]
    # What the step reports once it succeeded (a StepOutput model), or NoOutput: required, so
    # that a step says so rather than reporting nothing by default.
    output: type[StepOutput]
    params: type[StepParams] = StepParams
    aliases: tuple[str, ...] = ()
    # False for a step that never looks at the pixels: its data then carries no image bytes,
    # and loading them from the database is skipped.
    reads_image: bool = True
    # True for a step that spends its time waiting (on a server over HTTP, on the database)
    # rather than computing: its tasks go to the I/O queue, which a worker with a pool of
    # threads can serve, so that the processes of the CPU queue never sit idle waiting.
    io_bound: bool = False

    def __post_init__(self) -> None:
        if not TYPE_ID.fullmatch(self.type_id):
            raise ValueError(f"step type id {self.type_id!r} is not of the form 'group.name@vN'")
        if not (isinstance(self.output, type) and issubclass(self.output, StepOutput)):
            raise ValueError(f"step {self.type_id}: output must be a StepOutput model or NoOutput")

    def output_schema(self) -> dict[str, Any]:
        """JSON Schema of the step's output, as GET /steps shows it; `{"type": "null"}` for
        NoOutput."""
        if self.output is NoOutput:
            return dict(NO_OUTPUT_SCHEMA)
        return self.output.model_json_schema()

    def output_json(self, output: StepOutput | None) -> dict[str, Any] | None:
        """The output as stored and shown (JSON-safe); None for NoOutput. Raises TypeError when
        `output` is not what the manifest declares (a fault of the step's code)."""
        if self.output is NoOutput and output is None:
            return None
        if type(output) is not self.output:
            raise TypeError(
                f"step {self.type_id} reported {type(output).__name__}, "
                f"not the {self.output.__name__} its manifest declares"
            )
        return output.model_dump(mode="json")


@dataclass
class StepContext:
    """What a running step may use besides its data: the job, the database, HTTP, settings."""

    job_id: uuid.UUID
    session: Session
    http: httpx.Client
    settings: Settings
    # The stored image the step works on (its row id in job_images), as read when the step
    # was claimed; None where no such row is known.
    image_id: int | None = None
    # The client for destinations a pipeline's author chose (webhooks): it connects only where
    # settings.egress_policy allows (common.egress). None: a step makes one for the call.
    egress: httpx.Client | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class StepError(Exception):
    """A step failed in a way that retrying will not fix."""


class TransientStepError(StepError):
    """A step failed in a way that may pass if tried again later (timeouts, 5xx, refused)."""


D = TypeVar("D", bound=ImageData)
P = TypeVar("P", bound=StepParams)


class Step(ABC, Generic[D, P]):
    manifest: ClassVar[StepManifest]

    def __init__(self, params: P) -> None:
        self.params = params

    @abstractmethod
    def run(self, data: D, ctx: StepContext) -> D:
        """Return the data for the next step; raise StepError (or TransientStepError) to fail."""

    def output(self, before: D, after: D) -> StepOutput | None:
        """The step's output (an instance of its manifest's `output`) from the data it was
        given and the data `run` returned; None for a step declared with NoOutput."""
        return None

    def execute(self, data: D, ctx: StepContext) -> tuple[D, StepOutput | None]:
        """`run`, then `output`: the data for the next step and the step's output. A step
        whose output is not in the data it returns (a webhook's HTTP status) overrides this."""
        after = self.run(data, ctx)
        return after, self.output(data, after)
