"""One getter per resource the lifespan puts on app.state, with an Annotated alias each."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.cache import CellCache
from app.db import Database
from app.locate import GeoIPReader
from app.metrics import Metrics
from app.settings import Settings


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def get_cache(request: Request) -> CellCache:
    cache: CellCache = request.app.state.cache
    return cache


def get_geoip(request: Request) -> GeoIPReader | None:
    reader: GeoIPReader | None = request.app.state.geoip
    return reader


def get_metrics(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics


SettingsDep = Annotated[Settings, Depends(get_settings)]
DatabaseDep = Annotated[Database, Depends(get_db)]
CacheDep = Annotated[CellCache, Depends(get_cache)]
GeoReaderDep = Annotated[GeoIPReader | None, Depends(get_geoip)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
