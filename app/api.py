"""The public HTTP API: /api/nearest, the World Heritage sites nearest to the visitor."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, Response

from app.deps import ServicesDep
from app.geo import Point, grid_key
from app.locate import Located, locate
from app.metrics import observe_db
from app.ranking import Cell
from app.schemas import ErrorOut, NearestOut, nearest_body
from app.sites import cell_candidates

MAX_LIMIT = 50
DEFAULT_LIMIT = 10
PUBLIC_CACHE = "public, max-age=86400"
PRIVATE_CACHE = "private, no-store"
BROWSER_LOCATION = "your browser's position (coordinates sent with the request)"
TOGETHER = "give lat and lon together, or neither"

router = APIRouter()


def _explicit_point(lat: float | None, lon: float | None) -> Point | None:
    if lat is None and lon is None:
        return None
    if lat is None or lon is None:
        missing = "lat" if lat is None else "lon"
        raise HTTPException(
            422,
            [
                {
                    "type": "missing",
                    "loc": ["query", missing],
                    "msg": "lat and lon must be given together, or neither",
                    "input": None,
                }
            ],
        )
    return Point(lat, lon)


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    opaque = etag.removeprefix("W/")
    tags = (t.strip().removeprefix("W/") for t in if_none_match.split(","))
    return any(t in ("*", opaque) for t in tags)


@router.get(
    "/api/nearest",
    response_model=NearestOut,
    responses={
        304: {"description": "Not modified (If-None-Match matched the ETag)"},
        422: {"description": "Bad coordinates or limit; `detail` says which and why"},
        503: {"model": ErrorOut, "description": "database or proxy unavailable"},
    },
    summary="The World Heritage sites nearest to the visitor",
)
async def nearest(
    request: Request,
    services: ServicesDep,
    lat: Annotated[
        float | None,
        Query(ge=-90, le=90, allow_inf_nan=False, description=f"latitude in degrees; {TOGETHER}"),
    ] = None,
    lon: Annotated[
        float | None,
        Query(
            ge=-180, le=180, allow_inf_nan=False, description=f"longitude in degrees; {TOGETHER}"
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="how many sites")] = DEFAULT_LIMIT,
) -> Response:
    """Both coordinates or neither (then the caller is located by CDN headers or GeoIP).

    The body is built by app.schemas' encoder from bytes cached per cell, not by serialising
    a NearestOut per request; the model is what /docs shows and what the encoder is tested
    against.
    """
    settings, db, metrics = services.settings, services.db, services.metrics
    explicit = _explicit_point(lat, lon)
    if explicit is not None:
        where = Located(explicit, False, BROWSER_LOCATION, "")
    else:
        # request.client is the visitor: ProxyHeadersMiddleware (main.py) has already taken
        # X-Forwarded-For into account, from trusted proxies only.
        client = request.client
        where = locate(settings, services.geoip, request.headers, client.host if client else None)
    cell_key = grid_key(where.point)
    # Two tiers of candidates per cell: the usual 10 (about a dozen rows to re-rank per
    # request) and the maximum; a cell costs at most one query per tier.
    tier = DEFAULT_LIMIT if limit <= DEFAULT_LIMIT else MAX_LIMIT

    async def load() -> Cell:
        started = time.perf_counter()
        try:
            async with asyncio.timeout(settings.db_timeout_s), db.connection() as conn:
                found = await cell_candidates(conn, cell_key, tier)
        except BaseException:
            observe_db(metrics, started, "error")
            raise
        observe_db(metrics, started, "ok")
        return Cell.of(found)

    cell, source = await services.cache.get((*cell_key, tier), load)
    metrics.cache_by_source[source].inc()
    sites_json, etag = cell.answer(where.point, limit)
    body = nearest_body(
        via_ip=where.via_ip,
        longitude=where.point.longitude,
        latitude=where.point.latitude,
        location=where.location,
        cached=source in ("memory", "shared"),
        nearest_sites=sites_json,
    )
    if explicit is None:
        headers = {"Cache-Control": PRIVATE_CACHE}
        if where.depends_on:
            headers["Vary"] = where.depends_on
        return Response(body, media_type="application/json", headers=headers)
    headers = {"Cache-Control": PUBLIC_CACHE, "ETag": etag, "Access-Control-Allow-Origin": "*"}
    if _matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)
