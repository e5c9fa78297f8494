"""docs/steps.md: every step type and data type of the step registry, from their manifests.

A step's parameters and output are shown from their pydantic models' JSON Schema (the same
schema GET /steps serves): type, limits, default, description.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel

from common.pipeline import ImageData, NoOutput, Registry, default_registry
from common.pipeline.registry import AnyStep
from tools.docs.markdown import GENERATED, anchor, cell, code, rule

# "common.pipeline.datatypes.Detection | None" reads as "Detection | None".
_MODULE_PATH = re.compile(r"\b(?:[A-Za-z_]\w*\.)+(?=[A-Za-z_])")
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


def _annotation(annotation: Any) -> str:
    if isinstance(annotation, type):
        return annotation.__name__
    return _MODULE_PATH.sub("", str(annotation))


def _datatype_section(cls: type[ImageData], known: set[type[ImageData]]) -> list[str]:
    base = next((parent for parent in cls.__mro__[1:] if parent in known), None)
    derived = f"Derives from [`{base.__name__}`](#{anchor(base.__name__)}). " if base else ""
    lines = [f"### {cls.__name__}", "", derived + cell(cls.__doc__ or ""), ""]
    inherited = base.model_fields if base else {}
    own = [(name, info) for name, info in cls.model_fields.items() if name not in inherited]
    if not own:
        return lines
    lines += ["| Field | Type | Default |", "| --- | --- | --- |"]
    for name, info in own:
        default = "required" if info.is_required() else code(info.get_default())
        lines.append(f"| `{name}` | `{cell(_annotation(info.annotation))}` | {default} |")
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
    known = set(registry.datatypes)
    for cls in registry.datatypes:
        lines += _datatype_section(cls, known)
    return "\n".join(lines).rstrip("\n") + "\n"
