"""Which steps and data types exist, by stable id and by the earlier implementation's names."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from common.pipeline.datatypes import ImageData
from common.pipeline.step import Step

AnyStep = type[Step[Any, Any]]


class RegistryError(ValueError):
    pass


class Registry:
    def __init__(self) -> None:
        self._steps: dict[str, AnyStep] = {}
        self._step_names: dict[str, str] = {}
        self._datatypes: dict[str, type[ImageData]] = {}

    def add_step(self, cls: AnyStep) -> AnyStep:
        manifest = cls.manifest
        for name in (manifest.type_id, *manifest.aliases):
            if name in self._step_names:
                raise RegistryError(
                    f"step name {name!r} of {cls.__name__} is already taken by "
                    f"{self._step_names[name]}"
                )
        self._steps[manifest.type_id] = cls
        for name in (manifest.type_id, *manifest.aliases):
            self._step_names[name] = manifest.type_id
        return cls

    def add_datatype(self, cls: type[ImageData]) -> type[ImageData]:
        if cls.__name__ in self._datatypes:
            raise RegistryError(f"data type {cls.__name__!r} is registered twice")
        self._datatypes[cls.__name__] = cls
        return cls

    def step(self, name: str) -> AnyStep | None:
        type_id = self._step_names.get(name)
        return None if type_id is None else self._steps[type_id]

    def datatype(self, name: str) -> type[ImageData] | None:
        return self._datatypes.get(name)

    @property
    def steps(self) -> Iterable[AnyStep]:
        return self._steps.values()

    @property
    def datatypes(self) -> Iterable[type[ImageData]]:
        return self._datatypes.values()
