"""The steps and data types a pipeline config may use, described from the registry itself."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, Field, ValidationError
from pydantic_core import PydanticSerializationError, to_jsonable_python

from common.pipeline import ImageData, Registry, registry

# "common.pipeline.datatypes.Detection | None" reads as "Detection | None".
_MODULE_PATH = re.compile(r"\b(?:[A-Za-z_]\w*\.)+(?=[A-Za-z_])")


class StepInfo(BaseModel):
    type: str = Field(description="The step's type id, as a config names it.")
    aliases: list[str] = Field(description="Other names a config may use (earlier formats).")
    description: str
    accepts: str = Field(description="The data type the step works on (or any subclass of it).")
    params: dict[str, Any] = Field(
        description="JSON Schema of the step's parameters, with their defaults."
    )
    output: dict[str, Any] = Field(
        description="JSON Schema of what the step reports once it succeeded (the `output` of "
        'its entry in a job\'s steps); {"type": "null"} for a step that reports nothing.'
    )


class FieldInfo(BaseModel):
    name: str
    type: str
    required: bool
    default: Any = Field(None, description="The default, when the field is not required.")
    description: str | None = None


class DataTypeInfo(BaseModel):
    name: str
    base: str | None = Field(description="The data type this one extends; null for the root.")
    description: str
    fields: list[FieldInfo] = Field(description="Every field, inherited ones included.")


class Catalogue(BaseModel):
    steps: list[StepInfo]
    datatypes: list[DataTypeInfo]


def _type_name(annotation: Any) -> str:
    if isinstance(annotation, type):
        return annotation.__name__
    return _MODULE_PATH.sub("", str(annotation))


def _jsonable(value: Any) -> Any:
    try:
        return to_jsonable_python(value)
    except PydanticSerializationError:
        return repr(value)


def _base(cls: type[ImageData], known: set[type[ImageData]]) -> str | None:
    return next((parent.__name__ for parent in cls.__mro__[1:] if parent in known), None)


def _datatype(cls: type[ImageData], known: set[type[ImageData]]) -> DataTypeInfo:
    fields = []
    for name, info in cls.model_fields.items():
        required = info.is_required()
        default = None if required else info.get_default(call_default_factory=True)
        fields.append(
            FieldInfo(
                name=name,
                type=_type_name(info.annotation),
                required=required,
                default=_jsonable(default),
                description=info.description,
            )
        )
    return DataTypeInfo(
        name=cls.__name__,
        base=_base(cls, known),
        description=(cls.__doc__ or "").strip(),
        fields=fields,
    )


def build_catalogue(source: Registry) -> Catalogue:
    steps = [
        StepInfo(
            type=step.manifest.type_id,
            aliases=list(step.manifest.aliases),
            description=step.manifest.description,
            accepts=step.manifest.accepts.__name__,
            params=step.manifest.params.model_json_schema(),
            output=step.manifest.output_schema(),
        )
        for step in source.steps
    ]
    known = set(source.datatypes)
    return Catalogue(steps=steps, datatypes=[_datatype(cls, known) for cls in source.datatypes])


@lru_cache(maxsize=1)
def catalogue() -> Catalogue:
    """Built once per process: the registry does not change while it runs."""
    return build_catalogue(registry())


def output_in_order(step_type: str, output: dict[str, Any] | None) -> dict[str, Any] | None:
    """A stored step output with its fields in the order its output model declares them (the
    database keeps JSON keys in an order of its own); as stored when the step type is unknown
    or the output no longer fits its model."""
    step = registry().step(step_type)
    if output is None or step is None:
        return output
    try:
        return step.manifest.output.model_validate(output).model_dump(mode="json")
    except ValidationError:
        return output
