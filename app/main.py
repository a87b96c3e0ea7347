"""The FastAPI application: `create_app()` wires settings, database, cache, GeoIP and routes.

Run with `uvicorn app.main:create_app --factory`; nothing is created at import time.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

import driver
from app import meta, page, routes
from app.assets import Assets, assets_router
from app.cache import CellCache, SharedCache
from app.db import Connector, Database, PoolFactory
from app.deps import Services
from app.docs import mount_docs
from app.locate import open_reader
from app.metrics import Metrics, RequestMetrics
from app.playground import PlaygroundConfig, playground_router
from app.settings import Settings, get_settings
from app.shedding import LoadShedding

log = logging.getLogger(__name__)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Open what the requests share (per worker) and close it on shutdown."""
    s: Settings = app.state.settings
    shared = SharedCache(s.cache_url, s.cache_ttl_s) if s.cache_url else None
    app.state.cache = CellCache(s.cache_ttl_s, s.cache_max_cells, shared)
    app.state.geoip = open_reader(s.geoip_db_path)
    app.state.services = Services(
        s, app.state.db, app.state.cache, app.state.geoip, app.state.metrics
    )
    await app.state.db.start()
    try:
        yield
    finally:
        await app.state.db.close()
        await app.state.cache.close()
        if app.state.geoip is not None:
            app.state.geoip.close()


def create_app(
    settings: Settings | None = None,
    *,
    pool_factory: PoolFactory | None = None,
    connect: Connector | None = None,
) -> FastAPI:
    """A new app; tests pass their own settings (and, for scripted faults, a pool factory)."""
    settings = settings or get_settings()
    app = FastAPI(
        title="Nearest UNESCO World Heritage sites",
        version="1.0",
        lifespan=lifespan,
        docs_url=None,  # app/docs.py serves Swagger UI from a local package, not a CDN
        redoc_url=None,
        summary="The World Heritage sites nearest to you, from PostGIS over a WebSocket driver.",
    )
    app.state.settings = settings
    app.state.metrics = Metrics()
    app.state.db = Database(settings, pool_factory=pool_factory, connect=connect)

    async def database_unavailable(request: Request, exc: Exception) -> JSONResponse:
        log.warning("%s %s: database unavailable: %r", request.method, request.url.path, exc)
        return routes.unavailable(settings.retry_after_s, exc)

    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("%s %s failed", request.method, request.url.path, exc_info=exc)
        return JSONResponse({"detail": "internal error"}, status_code=500)

    for kind in (driver.Error, TimeoutError, OSError):
        app.add_exception_handler(kind, database_unavailable)
    # The last resort: a short JSON body, the traceback only in the server log.
    app.add_exception_handler(Exception, internal_error)
    app.include_router(routes.router)
    app.include_router(meta.router)
    assets = Assets()  # hashes are computed on the first request that needs them
    app.include_router(
        page.page_router(
            assets,
            tiles_url=settings.map_tiles_url,
            tiles_attribution=settings.map_tiles_attribution,
        )
    )
    app.include_router(
        playground_router(
            PlaygroundConfig(
                database_url=settings.playground_database_url,
                ws_proxy=settings.playground_ws_proxy or settings.ws_proxy,
                use_secure_websocket=(
                    settings.ws_secure
                    if settings.playground_ws_secure is None
                    else settings.playground_ws_secure
                ),
            ),
            assets=assets,
        )
    )
    app.include_router(assets_router(assets))
    page.mount_static(app)
    mount_docs(app)
    app.add_middleware(RequestMetrics, metrics=app.state.metrics)
    # Outermost: a shed request costs no metrics bookkeeping and no routing.
    app.add_middleware(
        LoadShedding,
        max_active=settings.max_active_requests,
        max_queued=settings.max_queued_requests,
        queue_timeout_s=settings.queue_timeout_s,
        retry_after_s=settings.retry_after_s,
    )
    return app
