"""SQLModel + FastAPI over WebSockets: the demo's site table through the ``postgresql+pgws``
dialect and the proxy.

Run it against the demo (``make demo`` prints the database URL and the proxy address)::

    export DATABASE_URL='postgresql+pgws://whc:whc@127.0.0.1:5433/whc'\\
'?ws_proxy=127.0.0.1:9876/v2&use_secure_websocket=false'
    .venv/bin/uvicorn examples.sqlmodel_app:app --port 8010

then ``curl 'http://127.0.0.1:8010/sites/nearest?lat=48.85&lon=2.35'``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query
from sqlalchemy import ColumnElement, func, literal_column
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlmodel import Field, SQLModel, select
from sqlmodel.ext.asyncio.session import AsyncSession


class Site(SQLModel, table=True):
    """A row of ``whc_sites`` (sql/schema.sql); the geography column is read through SQL."""

    __tablename__ = "whc_sites"

    id_no: int = Field(primary_key=True)
    name_en: str
    category: str
    states_name_en: str
    date_inscribed: int


class NearSite(SQLModel):
    id_no: int
    name_en: str
    category: str
    distance_km: float


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    engine: AsyncEngine = create_async_engine(os.environ["DATABASE_URL"], pool_pre_ping=True)
    app.state.engine = engine
    yield
    await engine.dispose()


app = FastAPI(title="SQLModel over WebSockets", lifespan=lifespan)


async def session() -> AsyncIterator[AsyncSession]:
    async with AsyncSession(app.state.engine) as s:
        yield s


SessionDep = Annotated[AsyncSession, Depends(session)]


@app.get("/sites/nearest", response_model=list[NearSite])
async def nearest(
    s: SessionDep,
    lat: Annotated[float, Query(ge=-90, le=90)],
    lon: Annotated[float, Query(ge=-180, le=180)],
    limit: Annotated[int, Query(ge=1, le=50)] = 5,
) -> list[NearSite]:
    here = func.geography(func.ST_SetSRID(func.ST_MakePoint(lon, lat), 4326))
    location: ColumnElement[Any] = literal_column("location")
    rows = await s.exec(
        select(Site.id_no, Site.name_en, Site.category, location.op("<->")(here))
        .order_by(location.op("<->")(here))
        .limit(limit)
    )
    return [
        NearSite(id_no=i, name_en=n, category=c, distance_km=round(d / 1000, 3))
        for i, n, c, d in rows
    ]


@app.get("/sites/{id_no}", response_model=Site)
async def site(s: SessionDep, id_no: int) -> Site:
    found = await s.get(Site, id_no)
    if found is None:
        raise HTTPException(404, f"no site {id_no}")
    return found
