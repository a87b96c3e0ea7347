"""/docs: Swagger UI served by the app from the pinned `swagger-ui-dist` npm package (no CDN).

FastAPI's default page loads Swagger UI's script and stylesheet from a public CDN, so /docs is
blank on a machine or a network without internet access. Here the same files come from
app/swagger/node_modules (pinned by app/swagger/package-lock.json, installed by `npm ci` in
bootstrap and in the image's build), like the map outlines in app/page.py. Swagger UI 5 is
needed for the OpenAPI 3.1 document FastAPI generates.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, HTTPException
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import FileResponse, HTMLResponse

SWAGGER_DIST = Path(__file__).resolve().parent / "swagger" / "node_modules" / "swagger-ui-dist"
ASSETS = "/docs/assets"
# The only files the page loads; nothing else of the package is reachable.
_FILES = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon-32x32.png": "image/png",
}


def mount_docs(app: FastAPI) -> None:
    """Serve /docs and its assets; build the app with `docs_url=None, redoc_url=None` first."""
    openapi_url = app.openapi_url or "/openapi.json"
    redirect = "/docs/oauth2-redirect"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} - API docs",
            oauth2_redirect_url=redirect,
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon-32x32.png",
        )

    @app.get(redirect, include_in_schema=False)
    async def oauth2_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get(ASSETS + "/{name}", include_in_schema=False)
    async def asset(name: str) -> FileResponse:
        if name not in _FILES:
            raise HTTPException(404)
        path = SWAGGER_DIST / name
        if not path.is_file():
            raise HTTPException(404, "Swagger UI is not installed: run `npm ci` in app/swagger")
        return FileResponse(
            path, media_type=_FILES[name], headers={"Cache-Control": "public, max-age=86400"}
        )
