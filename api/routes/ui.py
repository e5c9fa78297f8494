"""The results page: static HTML, CSS and one small JavaScript module per page, no build step.

The files carry no data: the page's scripts fetch everything from the JSON API, sending the API
key the person typed in, so these routes stay open when the service has keys (api/security.py).
They are left out of the OpenAPI document: they are pages for people, not part of the API.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, Response

from api.errors import ApiError

# api/security.py leaves this prefix open when the service has API keys.
router = APIRouter(prefix="/ui", include_in_schema=False)

UI_DIR = Path(__file__).resolve().parent.parent / "ui"
_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
# Only what is in the folder, looked up by exact name: no path from the request reaches the disk.
ASSETS = {path.name: path for path in (UI_DIR / "static").iterdir() if path.suffix in _TYPES}

# Scripts and styles only from this server, no inline script; images also from blob: URLs,
# which is how the page shows images it fetched with the key.
_HEADERS = {
    "Cache-Control": "no-cache",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' blob: data:; object-src 'none'; "
        "base-uri 'none'; frame-ancestors 'none'; form-action 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def _page(name: str) -> Response:
    return FileResponse(UI_DIR / name, media_type="text/html; charset=utf-8", headers=_HEADERS)


@router.get("")
def jobs_page() -> Response:
    """Recent jobs with their thumbnails, filters, and the upload form."""
    return _page("index.html")


@router.get("/jobs/{job_id}")
def job_page(job_id: str) -> Response:
    """One job: its images side by side, the detection, the steps and their timings.

    The id is checked by the API when the page asks for the job, which shows its answer.
    """
    return _page("job.html")


@router.get("/static/{name}")
def asset(name: str) -> Response:
    path = ASSETS.get(name)
    if path is None:
        raise ApiError(404, "not_found", f"the results page has no file {name!r}")
    return FileResponse(path, media_type=_TYPES[path.suffix], headers=_HEADERS)
