"""The HTTP API: /api/nearest, and the operator's /healthz, /readyz and /metrics."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

import driver
from app.deps import DatabaseDep, MetricsDep, ServicesDep, SettingsDep
from app.geo import Point, grid_key
from app.locate import Located, locate
from app.metrics import observe_db
from app.ranking import Cell
from app.schemas import ErrorOut, NearestOut
from app.sites import cell_candidates

log = logging.getLogger(__name__)

MAX_LIMIT = 50
DEFAULT_LIMIT = 10
PUBLIC_CACHE = "public, max-age=86400"
PRIVATE_CACHE = "private, no-store"
BROWSER_LOCATION = "your browser's position (coordinates sent with the request)"

router = APIRouter()


def _coordinate(name: str, text: str, bound: float) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
        reason = f"{name} must be a number, got {text[:40]!r}"
    else:
        reason = f"{name} must be a finite number between {-bound:g} and {bound:g}"
    if not math.isfinite(value) or not -bound <= value <= bound:
        raise HTTPException(
            422,
            [{"type": "value_error", "loc": ["query", name], "msg": reason, "input": text[:40]}],
        )
    return value


QUERY_PARAMETERS = [
    {"name": "lat", "in": "query", "required": False,
     "description": "latitude in degrees; give lat and lon together, or neither",
     "schema": {"type": "number", "minimum": -90, "maximum": 90}},
    {"name": "lon", "in": "query", "required": False,
     "description": "longitude in degrees; give lat and lon together, or neither",
     "schema": {"type": "number", "minimum": -180, "maximum": 180}},
    {"name": "limit", "in": "query", "required": False, "description": "how many sites",
     "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT,
                "default": DEFAULT_LIMIT}},
]


def _limit(text: str | None) -> int:
    if text is None:
        return DEFAULT_LIMIT
    try:
        value = int(text)
    except ValueError:
        msg = "Input should be a valid integer"
    else:
        if 1 <= value <= MAX_LIMIT:
            return value
        msg = (
            "Input should be greater than or equal to 1" if value < 1
            else f"Input should be less than or equal to {MAX_LIMIT}"
        )
    raise HTTPException(
        422, [{"type": "value_error", "loc": ["query", "limit"], "msg": msg, "input": text[:40]}]
    )


def _explicit_point(lat: str | None, lon: str | None) -> Point | None:
    if lat is None and lon is None:
        return None
    if lat is None or lon is None:
        missing = "lat" if lat is None else "lon"
        raise HTTPException(
            422,
            [{"type": "missing", "loc": ["query", missing],
              "msg": "lat and lon must be given together, or neither", "input": None}],
        )
    return Point(_coordinate("lat", lat, 90), _coordinate("lon", lon, 180))


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
    openapi_extra={"parameters": QUERY_PARAMETERS},
)
async def nearest(request: Request, services: ServicesDep) -> Response:
    """Both coordinates or neither (then the caller is located by CDN headers or GeoIP).

    The query string is parsed here rather than declared as FastAPI parameters: per-request
    parameter introspection cost more than the rest of a cached answer. /docs still shows the
    parameters (QUERY_PARAMETERS), and errors keep FastAPI's 422 shape.
    """
    settings, db, metrics = services.settings, services.db, services.metrics
    query = request.query_params
    limit = _limit(query.get("limit"))
    explicit = _explicit_point(query.get("lat"), query.get("lon"))
    if explicit is not None:
        where = Located(explicit, False, BROWSER_LOCATION, "")
    else:
        client = request.client
        where = locate(
            settings, services.geoip, request.headers, client.host if client else None,
            request.headers.getlist("x-forwarded-for"),
        )
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
    head = json.dumps(
        {
            "viaIp": where.via_ip,
            "longitude": where.point.longitude,
            "latitude": where.point.latitude,
            "location": where.location,
            "cached": source in ("memory", "shared"),
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )
    body = head[:-1].encode() + b',"nearestSites":' + sites_json + b"}"
    if explicit is None:
        headers = {"Cache-Control": PRIVATE_CACHE}
        if where.depends_on:
            headers["Vary"] = where.depends_on
        return Response(body, media_type="application/json", headers=headers)
    headers = {"Cache-Control": PUBLIC_CACHE, "ETag": etag, "Access-Control-Allow-Origin": "*"}
    if _matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)


@router.get("/healthz", summary="The process is alive (no dependencies checked)")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="The database answers through the proxy",
    responses={503: {"model": ErrorOut}},
)
async def readyz(settings: SettingsDep, db: DatabaseDep) -> Response:
    try:
        async with asyncio.timeout(settings.db_timeout_s), db.connection() as conn:
            await conn.fetchval("SELECT 1")
    except Exception as exc:  # any failure at all means "not ready"; the log has the details
        log.warning("not ready: %r", exc)
        return unavailable(settings.retry_after_s, exc)
    return JSONResponse({"status": "ready"})


@router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
async def metrics_endpoint(metrics: MetricsDep) -> Response:
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)


def unavailable(retry_after_s: int, exc: BaseException) -> JSONResponse:
    """503 with a short reason; details go to the log, never a traceback to the client."""
    if isinstance(exc, TimeoutError):
        reason = "the database did not answer in time"
    elif isinstance(exc, driver.PostgresError):
        reason = f"the database refused the query ({getattr(exc, 'sqlstate', '?')})"
    elif isinstance(exc, driver.Error | OSError):
        reason = f"the database cannot be reached through the proxy ({type(exc).__name__})"
    else:
        reason = f"the database connection failed unexpectedly ({type(exc).__name__})"
    return JSONResponse(
        {"detail": "service temporarily unavailable", "reason": reason},
        status_code=503,
        headers={"Retry-After": str(retry_after_s), "Cache-Control": "no-store"},
    )
