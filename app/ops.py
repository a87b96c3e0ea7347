"""The operator's endpoints: /healthz, /readyz, /metrics, and the 503 body shared with main.py."""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

import driver
from app.deps import DatabaseDep, MetricsDep, SettingsDep
from app.schemas import ErrorOut

log = logging.getLogger(__name__)

router = APIRouter()


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
