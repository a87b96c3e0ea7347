"""A cell's candidates, prepared once so that each request re-ranks them cheaply.

Ranking uses unit vectors: the straight-line (chord) distance between two points of the unit
sphere grows with their great-circle distance, so ordering by the squared chord needs no
trigonometry per candidate. Only the `limit` winners get their exact PostGIS-style distance.
The JSON of each site is also prepared once (app.schemas), with a gap for the distance.
"""

from __future__ import annotations

import hashlib
import heapq
import math
from dataclasses import dataclass, field

from app.geo import EARTH_RADIUS_M, Point
from app.schemas import site_fragments, sites_array
from app.sites import Site

ANSWERS_PER_CELL = 16


def _unit(lat: float, lon: float) -> tuple[float, float, float]:
    phi, lam = math.radians(lat), math.radians(lon)
    c = math.cos(phi)
    return (c * math.cos(lam), c * math.sin(lam), math.sin(phi))


def _trig(lat: float, lon: float) -> tuple[float, float, float]:
    """(sin lat, cos lat, lon) in radians: sphere_distance's per-point terms, computed once."""
    phi = math.radians(lat)
    return (math.sin(phi), math.cos(phi), math.radians(lon))


def _distance(a: tuple[float, float, float], b: tuple[float, float, float]) -> float:
    """geo.sphere_distance on precomputed terms (same formula, same floats)."""
    sin1, cos1, lon1 = a
    sin2, cos2, lon2 = b
    d_lon = lon2 - lon1
    cos_d_lon = math.cos(d_lon)
    x = cos2 * math.sin(d_lon)
    y = cos1 * sin2 - sin1 * cos2 * cos_d_lon
    z = sin1 * sin2 + cos1 * cos2 * cos_d_lon
    return math.atan2(math.sqrt(x * x + y * y), z) * EARTH_RADIUS_M


@dataclass(frozen=True, slots=True)
class Cell:
    """Candidates of one cache cell with their unit vectors and JSON fragments."""

    sites: tuple[Site, ...]
    vectors: tuple[tuple[float, float, float], ...]
    trig: tuple[tuple[float, float, float], ...]
    fragments: tuple[tuple[bytes, bytes], ...]
    # Recent answers for exact points (IP-located visitors of one network, repeats, CDN
    # revalidations ask for the very same point): skips re-ranking and hashing.
    _answers: dict[tuple[float, float, int], tuple[bytes, str]] = field(
        default_factory=dict, compare=False, repr=False
    )

    @classmethod
    def of(cls, sites: tuple[Site, ...]) -> Cell:
        return cls(
            sites,
            tuple(_unit(s.latitude, s.longitude) for s in sites),
            tuple(_trig(s.latitude, s.longitude) for s in sites),
            tuple(site_fragments(s) for s in sites),
        )

    def nearest(self, point: Point, limit: int) -> list[tuple[int, float]]:
        """Indexes of the `limit` candidates nearest to `point`, with exact distances (m)."""
        px, py, pz = _unit(point.latitude, point.longitude)
        chords = [
            ((x - px) ** 2 + (y - py) ** 2 + (z - pz) ** 2, i)
            for i, (x, y, z) in enumerate(self.vectors)
        ]
        best = heapq.nsmallest(limit, chords)
        here = _trig(point.latitude, point.longitude)
        ranked = [(i, _distance(here, self.trig[i])) for _, i in best]
        ranked.sort(key=lambda r: r[1])  # the exact metric decides among near-equal chords
        return ranked

    def rank(self, point: Point, limit: int) -> list[tuple[Site, float]]:
        return [(self.sites[i], d) for i, d in self.nearest(point, limit)]

    def nearest_json(self, point: Point, limit: int) -> bytes:
        """The `nearestSites` JSON array for `point`."""
        fragments = self.fragments
        return sites_array((fragments[i], d) for i, d in self.nearest(point, limit))

    def answer(self, point: Point, limit: int) -> tuple[bytes, str]:
        """`nearestSites` JSON for `point` and its weak ETag, remembered for repeats.

        The ETag covers the point, the limit and the sites, not whether the answer was
        cached, so a repeat that says `cached: true` still revalidates with 304.
        """
        key = (point.latitude, point.longitude, limit)
        found = self._answers.get(key)
        if found is None:
            sites_json = self.nearest_json(point, limit)
            h = hashlib.blake2b(digest_size=16)
            h.update(f"{point.latitude!r},{point.longitude!r},{limit};".encode())
            h.update(sites_json)
            found = (sites_json, f'W/"{h.hexdigest()}"')
            if len(self._answers) >= ANSWERS_PER_CELL:
                del self._answers[next(iter(self._answers))]  # oldest first
            self._answers[key] = found
        return found
