"""One getter per resource the lifespan puts on app.state, with an Annotated alias each.

The getters are `async def` on purpose: FastAPI runs plain `def` dependencies in a thread
pool, and five thread hops per request cost more than the whole cached answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from app.cache import CellCache
from app.db import Database
from app.locate import GeoIPReader
from app.metrics import Metrics
from app.settings import Settings


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


async def get_cache(request: Request) -> CellCache:
    cache: CellCache = request.app.state.cache
    return cache


async def get_geoip(request: Request) -> GeoIPReader | None:
    reader: GeoIPReader | None = request.app.state.geoip
    return reader


async def get_metrics(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics


@dataclass(frozen=True, slots=True)
class Services:
    """Everything the hot route needs, resolved as one dependency instead of five."""

    settings: Settings
    db: Database
    cache: CellCache
    geoip: GeoIPReader | None
    metrics: Metrics


async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
DatabaseDep = Annotated[Database, Depends(get_db)]
CacheDep = Annotated[CellCache, Depends(get_cache)]
GeoReaderDep = Annotated[GeoIPReader | None, Depends(get_geoip)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
