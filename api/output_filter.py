"""GET /jobs?output=<step type>:<field>=<value>: jobs in which a step of that type succeeded and
reported that value.

Only fields of a single value (text, a number, true/false, one of a few words) can be matched,
and only for equality; `null` matches a field the step left empty. The step's output model
(its manifest's `output`) says which fields there are and what each one holds.
"""

from __future__ import annotations

import types
import typing
from typing import Any, Literal

from pydantic import TypeAdapter, ValidationError

from api.errors import ApiError
from common.pipeline import NoOutput, Registry
from common.repositories import OutputKind, OutputMatch

SYNTAX = "<step type>:<field>=<value>"
MAX_FILTERS = 5
MAX_LENGTH = 300
_UNIONS = (typing.Union, types.UnionType)


def _refuse(text: str, message: str) -> ApiError:
    return ApiError(
        422,
        "invalid_output_filter",
        f"output={text[:200]!s}: {message}",
        details=[{"field": "query.output", "message": message}],
    )


def _scalar(annotation: Any) -> tuple[Any, bool] | None:
    """The one type a field holds and whether it may be null; None if it holds no single value
    (a nested object, a list)."""
    optional = False
    if typing.get_origin(annotation) in _UNIONS:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        optional = len(args) < len(typing.get_args(annotation))
        if len(args) != 1:
            return None
        annotation = args[0]
    if typing.get_origin(annotation) is Literal or annotation in (bool, int, float, str):
        return annotation, optional
    return None


def _kind(annotation: Any) -> OutputKind:
    if typing.get_origin(annotation) is Literal or annotation is str:
        return "string"
    if annotation is bool:
        return "boolean"
    return "integer" if annotation is int else "float"


def parse_output_filter(text: str, registry: Registry) -> OutputMatch:
    """One `output` query value as a match; 422 `invalid_output_filter` saying what is wrong."""
    if len(text) > MAX_LENGTH:
        raise _refuse(text, f"at most {MAX_LENGTH} characters")
    step_name, colon, condition = text.partition(":")
    field, equals, raw = condition.partition("=")
    if not (colon and equals and step_name and field):
        raise _refuse(text, f"write it as {SYNTAX}, e.g. notify.webhook@v1:status=failed")
    step = registry.step(step_name)
    if step is None:
        raise _refuse(text, f"there is no step type {step_name[:100]!r}; GET /steps lists them")
    manifest = step.manifest
    if manifest.output is NoOutput:
        raise _refuse(text, f"{manifest.type_id} reports nothing to filter on")
    fields = manifest.output.model_fields
    if field not in fields:
        known = ", ".join(sorted(fields))
        raise _refuse(text, f"{manifest.type_id} reports no {field[:100]!r}; it reports {known}")
    scalar = _scalar(fields[field].annotation)
    if scalar is None:
        raise _refuse(text, f"{field} is not a single value and cannot be matched")
    annotation, optional = scalar
    value: Any
    if raw == "null":
        if not optional:
            raise _refuse(text, f"{field} is never null")
        value = None
    else:
        try:
            value = TypeAdapter(annotation).validate_strings(raw)
        except ValidationError as exc:
            reason = exc.errors(include_url=False, include_context=False)[0]["msg"]
            raise _refuse(text, f"{field}: {reason}") from exc
    return OutputMatch(manifest.type_id, field, _kind(annotation), value)


def parse_output_filters(values: list[str] | None, registry: Registry) -> tuple[OutputMatch, ...]:
    """Every `output` query value, all of which a job must match; at most MAX_FILTERS."""
    values = values or []
    if len(values) > MAX_FILTERS:
        raise ApiError(
            422,
            "invalid_output_filter",
            f"at most {MAX_FILTERS} output filters at once",
            details=[{"field": "query.output", "message": f"at most {MAX_FILTERS}"}],
        )
    return tuple(parse_output_filter(value, registry) for value in values)
