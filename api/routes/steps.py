"""The catalogue of steps and data types a pipeline config may use, from the registry."""

from __future__ import annotations

from fastapi import APIRouter

from api.catalogue import Catalogue, catalogue

router = APIRouter(prefix="/steps", tags=["steps"])


@router.get(
    "",
    response_model=Catalogue,
    summary="Every step type (with its parameters as JSON Schema) and every data type",
)
def get_catalogue() -> Catalogue:
    return catalogue()
