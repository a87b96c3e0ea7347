"""Points on the sphere: the ~1 km cache cells and the same distance PostGIS orders by.

PostGIS's `geography <-> geography` is the great-circle distance on a sphere of the WGS84 mean
radius. Re-ranking cached candidates with exactly that formula is what makes a cached answer
equal the database's answer for the visitor's own position.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# WGS84 mean radius (2a + b) / 3, the sphere PostGIS uses for geography `<->` and
# ST_DWithin(..., use_spheroid => false).
EARTH_RADIUS_M = (2 * 6378137.0 + 6356752.314245179) / 3
CELL_DECIMALS = 2
CELL_HALF = 0.5 * 10.0**-CELL_DECIMALS
# Added to the cell radius so float rounding never drops a candidate at the bound.
RADIUS_MARGIN_M = 1.0


@dataclass(frozen=True, slots=True)
class Point:
    """A WGS84 position in degrees."""

    latitude: float
    longitude: float


def sphere_distance(a: Point, b: Point) -> float:
    """Great-circle distance in metres, with the formula of PostGIS's `sphere_distance`."""
    lat1, lat2 = math.radians(a.latitude), math.radians(b.latitude)
    d_lon = math.radians(b.longitude) - math.radians(a.longitude)  # radians first, as PostGIS
    cos_lat1, sin_lat1 = math.cos(lat1), math.sin(lat1)
    cos_lat2, sin_lat2 = math.cos(lat2), math.sin(lat2)
    cos_d_lon = math.cos(d_lon)
    x = cos_lat2 * math.sin(d_lon)
    y = cos_lat1 * sin_lat2 - sin_lat1 * cos_lat2 * cos_d_lon
    z = sin_lat1 * sin_lat2 + cos_lat1 * cos_lat2 * cos_d_lon
    return math.atan2(math.sqrt(x * x + y * y), z) * EARTH_RADIUS_M


def grid_key(point: Point) -> tuple[float, float]:
    """The cell a point falls in: both coordinates rounded to 2 decimals (about 1 km).

    `+ 0.0` turns -0.0 into 0.0, so the two sides of the equator share one key.
    """
    return (
        round(point.latitude, CELL_DECIMALS) + 0.0,
        round(point.longitude, CELL_DECIMALS) + 0.0,
    )


def cell_centre(key: tuple[float, float]) -> Point:
    return Point(latitude=key[0], longitude=key[1])


def cell_radius(key: tuple[float, float]) -> float:
    """Metres from the cell's centre to its farthest point (a corner), plus a margin.

    Every point that rounds to `key` lies within this distance of the centre; for such a small
    lat/lon box the farthest point is always a corner. Latitudes are clamped to the poles.
    """
    centre = cell_centre(key)
    far = 0.0
    for d_lat in (-CELL_HALF, CELL_HALF):
        for d_lon in (-CELL_HALF, CELL_HALF):
            corner = Point(
                latitude=max(-90.0, min(90.0, centre.latitude + d_lat)),
                longitude=centre.longitude + d_lon,
            )
            far = max(far, sphere_distance(centre, corner))
    return far + RADIUS_MARGIN_M
