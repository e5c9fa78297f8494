"""docs/steps.md: every step type and data type of the step registry, from their manifests.

A step's parameters and output are shown from their pydantic models' JSON Schema, and the data
types from the catalogue GET /steps serves (api/catalogue.py): type, limits, default, description.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from api.catalogue import DataTypeInfo, build_catalogue
from common.pipeline import NoOutput, Registry, default_registry
from common.pipeline.registry import AnyStep
from tools.docs.markdown import GENERATED, anchor, cell, code, rule

_LIMITS = (
    ("minimum", "≥ {}"),
    ("exclusiveMinimum", "> {}"),
    ("maximum", "≤ {}"),
    ("exclusiveMaximum", "< {}"),
    ("maxLength", "at most {} characters"),
    ("pattern", "matches `{}`"),
)


def _type(schema: dict[str, Any], defs: dict[str, Any]) -> str:
    """A JSON Schema property in words: `integer`, `one of ...`, `X or null`."""
    if "$ref" in schema:
        return _type(defs[schema["$ref"].rsplit("/", 1)[-1]], defs)
    if "anyOf" in schema:
        return " or ".join(_type(option, defs) for option in schema["anyOf"])
    if "enum" in schema:
        return "one of " + ", ".join(f"`{value}`" for value in schema["enum"])
    if schema.get("type") == "object" and "title" in schema:
        keys = ", ".join(f"`{key}`" for key in schema.get("properties", {}))
        return f"object ({schema['title']}: {keys})"
    return str(schema.get("type", "any"))


def _limits(schema: dict[str, Any]) -> str:
    found = [text.format(schema[key]) for key, text in _LIMITS if key in schema]
    return f" ({', '.join(found)})" if found else ""


def _fields_table(model: type[BaseModel], with_default: bool) -> list[str]:
    schema = model.model_json_schema()
    defs = schema.get("$defs", {})
    required = set(schema.get("required", []))
    head = "| Name | Type | Default | Meaning |" if with_default else "| Name | Type | Meaning |"
    rows = [head, rule(head)]
    for name, prop in schema.get("properties", {}).items():
        kind = cell(_type(prop, defs) + _limits(prop))
        meaning = cell(prop.get("description", ""))
        default = "required" if name in required else code(prop.get("default"))
        rows.append(f"| `{name}` | {kind} | {default + ' | ' if with_default else ''}{meaning} |")
    return rows


def _step_section(step: AnyStep) -> list[str]:
    manifest = step.manifest
    accepts = manifest.accepts.__name__
    queue = "the I/O queue (threads)" if manifest.io_bound else "the CPU queue (processes)"
    facts = [
        f"- Accepts: [`{accepts}`](#{anchor(accepts)}) or a data type derived from it.",
        f"- Runs on {queue}" + ("" if manifest.reads_image else "; does not read the image") + ".",
    ]
    if manifest.aliases:
        names = ", ".join(f"`{alias}`" for alias in manifest.aliases)
        facts.insert(0, f"- Also named: {names} (the earlier implementation's name).")
    lines = [f"### `{manifest.type_id}`", "", cell(manifest.description), "", *facts, ""]
    if manifest.params.model_fields:
        lines += ["Parameters:", "", *_fields_table(manifest.params, with_default=True), ""]
    else:
        lines += ["Parameters: none.", ""]
    if manifest.output is NoOutput:
        return [*lines, "Output: none (`null`).", ""]
    return [*lines, "Output:", "", *_fields_table(manifest.output, with_default=False), ""]


def _datatype_section(info: DataTypeInfo, inherited: set[str]) -> list[str]:
    derived = f"Derives from [`{info.base}`](#{anchor(info.base)}). " if info.base else ""
    lines = [f"### {info.name}", "", derived + cell(info.description), ""]
    own = [field for field in info.fields if field.name not in inherited]
    if not own:
        return lines
    lines += ["| Field | Type | Default |", "| --- | --- | --- |"]
    for field in own:
        default = "required" if field.required else code(field.default)
        lines.append(f"| `{field.name}` | `{cell(field.type)}` | {default} |")
    return [*lines, ""]


def steps_md(registry: Registry | None = None) -> str:
    """The text of docs/steps.md, from `registry` (the built-in one by default)."""
    registry = registry or default_registry()
    index = [
        f"| [`{s.manifest.type_id}`](#{anchor(s.manifest.type_id)}) | "
        f"`{s.manifest.accepts.__name__}` | {cell(s.manifest.description)} |"
        for s in registry.steps
    ]
    lines = [
        GENERATED,
        "",
        "# Steps and data types",
        "",
        "What a pipeline's `config` may name (see [Pipelines](api.md#pipelines)), as `GET /steps`",
        "serves it. A step runs only in a pipeline whose data type is the one it accepts or one",
        "derived from it. Parameters left out take their defaults; an unknown one is refused.",
        "A step's output is kept on the job's step once it succeeded",
        "(see [Step outputs](api.md#step-outputs)).",
        "",
        "| Step | Accepts | Does |",
        "| --- | --- | --- |",
        *index,
        "",
        "## Steps",
        "",
    ]
    for step in registry.steps:
        lines += _step_section(step)
    lines += ["## Data types", ""]
    datatypes = {info.name: info for info in build_catalogue(registry).datatypes}
    for info in datatypes.values():
        base = datatypes.get(info.base or "")
        lines += _datatype_section(info, {field.name for field in base.fields} if base else set())
    return "\n".join(lines).rstrip("\n") + "\n"
