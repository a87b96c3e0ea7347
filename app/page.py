"""The visitor's page (GET /), its static assets and the offline map outlines."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI, HTTPException
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
# Natural Earth 1:110m country outlines from the pinned `world-atlas` npm package (app/map/),
# so the map draws without any tile server or internet access.
MAP_DATA = HERE / "map" / "node_modules" / "world-atlas" / "countries-110m.json"

router = APIRouter(include_in_schema=False)


@router.get("/")
async def index() -> FileResponse:
    return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})


@router.get("/map/countries-110m.json")
async def map_outlines() -> FileResponse:
    if not MAP_DATA.is_file():
        # The page still works (cards, list) and draws sites on a blank sea.
        raise HTTPException(404, "map outlines not installed: run `npm ci` in app/map")
    return FileResponse(
        MAP_DATA, media_type="application/json",
        headers={"Cache-Control": "public, max-age=604800"},
    )


def mount_static(app: FastAPI) -> None:
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
