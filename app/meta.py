"""GET /api/meta: where the loaded list came from, so the page can flag the invented sample."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

import driver
from app.deps import DatabaseDep, SettingsDep
from app.schemas import ErrorOut

# Shown by the page's banner when the invented sample is loaded.
HOW_TO_LOAD = (
    "Load the real list with `python -m app.load FILE` (a saved copy of "
    "https://whc.unesco.org/en/list/xml/ or the CSV export), or run the demo with WHC_DATA=FILE "
    "DEMO_RELOAD=1."
)
_DATASET_SQL = "SELECT source, sample, sites, loaded_at::text FROM whc_dataset"

router = APIRouter()


class MetaOut(BaseModel):
    """The dataset behind /api/nearest."""

    sample: bool = Field(description="true when the invented sample list is loaded")
    source: str | None = Field(description="file, feed URL or sample the rows were loaded from")
    sites: int | None = Field(description="rows in the last load")
    loadedAt: str | None = Field(description="when the last load committed")
    howToLoad: str | None = Field(
        description="how to load the real list (set when the sample is loaded)"
    )


@router.get(
    "/api/meta",
    response_model=MetaOut,
    responses={503: {"model": ErrorOut}},
    summary="Where the loaded World Heritage list came from (real list or invented sample)",
)
async def meta(settings: SettingsDep, db: DatabaseDep) -> dict[str, Any]:
    try:
        async with asyncio.timeout(settings.db_timeout_s), db.connection() as conn:
            row = await conn.fetchrow(_DATASET_SQL)
    except driver.PostgresError as exc:
        if getattr(exc, "sqlstate", None) != "42P01":  # undefined_table: loaded before v1.1
            raise
        row = None
    if row is None:
        return {"sample": False, "source": None, "sites": None, "loadedAt": None,
                "howToLoad": None}
    return {
        "sample": bool(row[1]),
        "source": row[0],
        "sites": int(row[2]),
        "loadedAt": row[3],
        "howToLoad": HOW_TO_LOAD if row[1] else None,
    }
