"""The API's documentation pages, Swagger UI at /docs and ReDoc at /redoc, served offline.

FastAPI's own pages load their scripts from a CDN, so they are blank on a closed network.
fastapi-offline ships the Swagger UI and ReDoc bundles in its wheel and serves them from the
app; the pages are FastAPI's, pointed at those files, as FastAPI's guide "Custom Docs UI Static
Assets (Self-Hosting)" describes. They reference nothing but this server. `GET /` sends a
person to the results page.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi_offline import FastAPIOffline

DOCS_URL = "/docs"
REDOC_URL = "/redoc"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"
# The bundles: swagger-ui-bundle.js, swagger-ui.css, redoc.standalone.js, favicon.png.
ASSETS_PREFIX = "/docs/static"
# Open when the service has API keys (api/security.py): the pages and their files carry no data.
OPEN_PATHS = frozenset({"/", DOCS_URL, REDOC_URL, OAUTH2_REDIRECT_URL})

# Swagger UI asks validator.swagger.io for a badge when the page is not on localhost: off.
_SWAGGER_PARAMETERS = {"validatorUrl": None}

# What the pages may load: this server only. ReDoc's sidebar shows Redocly's logo from their CDN
# (hidden if it fails to load); the browser does not even ask for it. Swagger UI starts from an
# inline script; ReDoc injects its styles and runs its search in a worker from a blob: URL.
CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; worker-src 'self' blob:; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'none'"
)

router = APIRouter(include_in_schema=False)


@router.get("/")
def home() -> RedirectResponse:
    """A person who opens the bare address lands on the results page (it links to /docs)."""
    return RedirectResponse("/ui", status_code=307)


@router.get(DOCS_URL)
def swagger_ui(request: Request) -> HTMLResponse:
    app = request.app
    page = get_swagger_ui_html(
        openapi_url=app.openapi_url,
        title=f"{app.title} - Swagger UI",
        swagger_js_url=f"{ASSETS_PREFIX}/swagger-ui-bundle.js",
        swagger_css_url=f"{ASSETS_PREFIX}/swagger-ui.css",
        swagger_favicon_url=f"{ASSETS_PREFIX}/favicon.png",
        oauth2_redirect_url=OAUTH2_REDIRECT_URL,
        swagger_ui_parameters=_SWAGGER_PARAMETERS,
    )
    page.headers["Content-Security-Policy"] = CSP
    return page


@router.get(OAUTH2_REDIRECT_URL)
def swagger_ui_redirect() -> HTMLResponse:
    return get_swagger_ui_oauth2_redirect_html()


@router.get(REDOC_URL)
def redoc(request: Request) -> HTMLResponse:
    app = request.app
    page = get_redoc_html(
        openapi_url=app.openapi_url,
        title=f"{app.title} - ReDoc",
        redoc_js_url=f"{ASSETS_PREFIX}/redoc.standalone.js",
        redoc_favicon_url=f"{ASSETS_PREFIX}/favicon.png",
        with_google_fonts=False,
    )
    page.headers["Content-Security-Policy"] = CSP
    return page


def documented_app(**options: Any) -> FastAPI:
    """A FastAPI app (`options` as for FastAPI()) whose /docs and /redoc need no network.

    fastapi-offline mounts its bundled files under ASSETS_PREFIX; the pages are ours, to send
    them with a Content-Security-Policy (its own pages have none).
    """
    app = FastAPIOffline(docs_url=None, redoc_url=None, static_url=ASSETS_PREFIX, **options)
    app.include_router(router)
    return app


def is_open(path: str) -> bool:
    """Whether `path` is a documentation page, one of its files, or the redirect at `/`."""
    return path in OPEN_PATHS or path.startswith(ASSETS_PREFIX + "/")
