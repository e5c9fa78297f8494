"""GET /steps: the catalogue of step types and data types, as the registry has them."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from common.pipeline import default_registry
from tests.conftest import API_PORT
from tests.system import System


@pytest.fixture(scope="module")
def catalogue(system: System) -> dict[str, Any]:
    response = httpx.get(f"http://127.0.0.1:{API_PORT}/steps", timeout=30)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_every_registered_step_is_listed_with_its_manifest(catalogue: dict[str, Any]) -> None:
    registry = default_registry()

    listed = {step["type"]: step for step in catalogue["steps"]}

    assert list(listed) == [cls.manifest.type_id for cls in registry.steps]
    for cls in registry.steps:
        manifest = cls.manifest
        step = listed[manifest.type_id]
        assert set(step) == {"type", "aliases", "description", "accepts", "params", "output"}
        assert step["aliases"] == list(manifest.aliases)
        assert step["description"] == manifest.description
        assert step["accepts"] == manifest.accepts.__name__
        assert step["params"] == manifest.params.model_json_schema()
        assert step["output"] == manifest.output_schema()


def test_step_parameters_come_with_their_defaults(catalogue: dict[str, Any]) -> None:
    fit = next(step for step in catalogue["steps"] if step["type"] == "image.fit@v1")

    properties = fit["params"]["properties"]

    assert properties["max_width"]["default"] == 640
    assert properties["quality"]["default"] == 90
    assert fit["params"]["additionalProperties"] is False
    assert "ImageHandler" in fit["aliases"]


def test_every_registered_data_type_is_listed_with_its_base_and_fields(
    catalogue: dict[str, Any],
) -> None:
    registry = default_registry()
    known = list(registry.datatypes)

    listed = {datatype["name"]: datatype for datatype in catalogue["datatypes"]}

    assert list(listed) == [cls.__name__ for cls in known]
    for cls in known:
        datatype = listed[cls.__name__]
        assert [field["name"] for field in datatype["fields"]] == list(cls.model_fields)
        parents = [p.__name__ for p in cls.__mro__[1:] if p in known]
        assert datatype["base"] == (parents[0] if parents else None)
    assert listed["ImageData"]["base"] is None
    image = next(f for f in listed["ImageData"]["fields"] if f["name"] == "image")
    assert (image["type"], image["required"]) == ("bytes", True)
    detection = next(f for f in listed["CarDetection"]["fields"] if f["name"] == "detection")
    assert detection == {
        "name": "detection",
        "type": "Detection | None",
        "required": False,
        "default": None,
        "description": None,
    }


def test_every_step_accepts_a_listed_data_type(catalogue: dict[str, Any]) -> None:
    names = {datatype["name"] for datatype in catalogue["datatypes"]}

    assert {step["accepts"] for step in catalogue["steps"]} <= names
