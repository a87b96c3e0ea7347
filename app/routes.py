"""The HTTP API: /api/nearest, and the operator's /healthz, /readyz and /metrics."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import time
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import TypeAdapter

import driver
from app.cache import Candidates
from app.deps import CacheDep, DatabaseDep, GeoReaderDep, MetricsDep, SettingsDep
from app.geo import Point, grid_key
from app.locate import Located, locate
from app.metrics import observe_db
from app.schemas import ErrorOut, NearestOut, SiteOut
from app.sites import cell_candidates, rank

log = logging.getLogger(__name__)

MAX_LIMIT = 50
DEFAULT_LIMIT = 10
PUBLIC_CACHE = "public, max-age=86400"
PRIVATE_CACHE = "private, no-store"
BROWSER_LOCATION = "your browser's position (coordinates sent with the request)"

router = APIRouter()
_sites_json = TypeAdapter(list[SiteOut])


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


def _etag(point: Point, limit: int, sites_json: bytes) -> str:
    """A weak validator: the body also says whether it was cached, which does not change what
    it means, so two answers with the same sites for the same point share one ETag.
    """
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{point.latitude!r},{point.longitude!r},{limit};".encode())
    h.update(sites_json)
    return f'W/"{h.hexdigest()}"'


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
        503: {"model": ErrorOut, "description": "database or proxy unavailable"},
    },
    summary="The World Heritage sites nearest to the visitor",
)
async def nearest(
    request: Request,
    settings: SettingsDep,
    db: DatabaseDep,
    cache: CacheDep,
    geoip: GeoReaderDep,
    metrics: MetricsDep,
    lat: Annotated[str | None, Query(description="latitude in degrees, -90..90")] = None,
    lon: Annotated[str | None, Query(description="longitude in degrees, -180..180")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> Response:
    explicit = _explicit_point(lat, lon)
    if explicit is not None:
        where = Located(explicit, False, BROWSER_LOCATION, "")
    else:
        client = request.client
        where = locate(
            settings, geoip, request.headers, client.host if client else None,
            request.headers.getlist("x-forwarded-for"),
        )
    key = grid_key(where.point)

    async def load() -> Candidates:
        started = time.perf_counter()
        try:
            async with asyncio.timeout(settings.db_timeout_s), db.connection() as conn:
                found = await cell_candidates(conn, key, MAX_LIMIT)
        except BaseException:
            observe_db(metrics, started, "error")
            raise
        observe_db(metrics, started, "ok")
        return found

    candidates, source = await cache.get(key, load)
    metrics.cache.labels(source).inc()
    ranked = rank(candidates, where.point, limit)
    sites_json = _sites_json.dump_json(
        [
            SiteOut(
                id_no=s.id_no, name_en=s.name_en, category=s.category, distance=d,
                states_name_en=s.states_name_en, iso_code=s.iso_code,
                date_inscribed=s.date_inscribed, latitude=s.latitude, longitude=s.longitude,
            )
            for s, d in ranked
        ]
    )
    head = json.dumps(
        {
            "viaIp": where.via_ip,
            "longitude": where.point.longitude,
            "latitude": where.point.latitude,
            "location": where.location,
            "cached": source in ("memory", "shared"),
        },
        separators=(",", ":"),
    )
    body = head[:-1].encode() + b',"nearestSites":' + sites_json + b"}"
    if explicit is None:
        headers = {"Cache-Control": PRIVATE_CACHE}
        if where.depends_on:
            headers["Vary"] = where.depends_on
        return Response(body, media_type="application/json", headers=headers)
    etag = _etag(where.point, limit, sites_json)
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
