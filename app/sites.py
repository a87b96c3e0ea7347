"""The site queries: the candidate set for one cache cell, and re-ranking it for one visitor."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.geo import Point, cell_centre, cell_radius

# All sites that can be among the k nearest of ANY point of a cell: with c the cell's centre,
# r its radius and D_k the k-th nearest distance from c, every point p of the cell has its k
# nearest within D_k + r of p, hence within D_k + 2r of c (triangle inequality). The inner
# KNN and the ST_DWithin are both answered by the GiST index; `false` = sphere, like `<->`.
CANDIDATES_SQL = """
SELECT id_no, name_en, category, states_name_en, iso_code, date_inscribed,
       ST_Y(location::geometry) AS latitude, ST_X(location::geometry) AS longitude
FROM whc_sites
WHERE ST_DWithin(
    location,
    ST_SetSRID(ST_MakePoint($1, $2), 4326)::geography,
    (SELECT max(d) FROM (
        SELECT location <-> ST_SetSRID(ST_MakePoint($1, $2), 4326)::geography AS d
        FROM whc_sites
        ORDER BY location <-> ST_SetSRID(ST_MakePoint($1, $2), 4326)::geography
        LIMIT $3) AS knn) + $4,
    false)
"""

# The plain nearest query (same text as sql/nearest.sql): the exact answer for one point.
NEAREST_SQL = """
SELECT id_no, name_en, category, states_name_en, iso_code, date_inscribed,
       ST_Y(location::geometry) AS latitude,
       ST_X(location::geometry) AS longitude,
       location <-> ST_SetSRID(ST_MakePoint($1, $2), 4326)::geography AS distance
FROM whc_sites
ORDER BY location <-> ST_SetSRID(ST_MakePoint($1, $2), 4326)::geography
LIMIT $3
"""


@dataclass(frozen=True, slots=True)
class Site:
    """One candidate site as the cache keeps it (JSON-friendly for the shared cache)."""

    id_no: int
    name_en: str
    category: str
    states_name_en: str
    iso_code: str
    date_inscribed: int
    latitude: float
    longitude: float

    @property
    def point(self) -> Point:
        return Point(self.latitude, self.longitude)


def _site(row: Any) -> Site:
    return Site(
        id_no=int(row[0]),
        name_en=row[1],
        category=row[2],
        states_name_en=row[3],
        iso_code=row[4],
        date_inscribed=int(row[5]),
        latitude=float(row[6]),
        longitude=float(row[7]),
    )


async def cell_candidates(conn: Any, key: tuple[float, float], k: int) -> tuple[Site, ...]:
    """Every site that can be among the `k` nearest of some point of cell `key`."""
    centre = cell_centre(key)
    bound = 2 * cell_radius(key)
    rows = await conn.fetch(CANDIDATES_SQL, centre.longitude, centre.latitude, k, bound)
    return tuple(_site(r) for r in rows)


async def nearest_exact(conn: Any, point: Point, k: int) -> list[tuple[Site, float]]:
    """The database's own answer for one point (the reference the cache must equal)."""
    rows = await conn.fetch(NEAREST_SQL, point.longitude, point.latitude, k)
    return [(_site(r), float(r[8])) for r in rows]
