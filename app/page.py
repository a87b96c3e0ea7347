"""The visitor's page (GET /), its assets under hashed URLs, and the old outline URL."""

from __future__ import annotations

import html
from pathlib import Path

from fastapi import APIRouter, FastAPI, HTTPException
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

from app.assets import MAP_MODULES, Assets

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
# Natural Earth 1:110m country outlines from the pinned `world-atlas` npm package (app/map/);
# the page itself loads the 1:50m and 1:10m files through /assets/world/.
MAP_DATA = MAP_MODULES / "world-atlas" / "countries-110m.json"


def page_router(assets: Assets, *, tiles_url: str = "", tiles_attribution: str = "") -> APIRouter:
    """GET / with its asset URLs filled in; `tiles_url` opts in to an online raster layer."""
    router = APIRouter(include_in_schema=False)
    rendered: dict[str, str] = {}
    tiles = (
        f'<meta name="whc-tiles" content="{html.escape(tiles_url)}"'
        f' data-attribution="{html.escape(tiles_attribution)}">'
        if tiles_url else ""
    )

    @router.get("/")
    async def index() -> HTMLResponse:
        # The HTML names its assets by hash, so it is revalidated on every visit ("no-cache")
        # while everything it points to is cached for good.
        if "index" not in rendered:
            page = assets.render((STATIC / "index.html").read_text())
            rendered["index"] = page.replace("<!-- tiles -->", tiles)
        return HTMLResponse(rendered["index"], headers={"Cache-Control": "no-cache"})

    @router.get("/map/countries-110m.json")
    async def map_outlines() -> FileResponse:
        if not MAP_DATA.is_file():
            raise HTTPException(404, "map outlines not installed: run `npm ci` in app/map")
        return FileResponse(
            MAP_DATA, media_type="application/json",
            headers={"Cache-Control": "public, max-age=604800"},
        )

    return router


def mount_static(app: FastAPI) -> None:
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
