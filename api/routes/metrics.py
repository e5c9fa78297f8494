"""`GET /metrics`: Prometheus exposition of the API's metrics (open, like /health)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from api.metrics import render

router = APIRouter(tags=["metrics"])


# Not in the OpenAPI document: it is for Prometheus, in Prometheus' text format.
@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    body, content_type = render(request.headers.get("accept"))
    return Response(body, media_type=content_type)
