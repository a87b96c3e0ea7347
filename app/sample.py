"""An invented World Heritage list in the CSV export's structure, for tests and data-less demos.

Nothing here is derived from UNESCO's list: names are made of invented syllables and places are
drawn from a seeded random generator, so the same rows come out on every machine. Besides
ordinary sites spread over the sphere, the list holds the places where nearest-neighbour answers
go wrong first: both sides of the antimeridian, both poles, (0, 0), pairs at exactly equal
distance from a point, several sites on one coordinate, and dense clusters where ranks are
tight. Tests find those cases by their `id_no` ranges (the constants below), never by name.

`python -m app.load --sample` loads it; `make demo` falls back to it when no list is at hand.
"""

from __future__ import annotations

import csv
import io
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SEED = 20211205
ORDINARY = 1000
CLUSTER_SIZE = 60
# Centres of dense clusters (lat, lon): where the tests' random points look for tight ranks.
CLUSTERS = ((48.0, 8.0), (42.0, 12.5), (35.0, 135.0))
# The CSV export's columns that the loader reads, in the export's order.
HEADER = (
    "unique_number", "id_no", "name_en", "short_description_en", "date_inscribed", "danger",
    "longitude", "latitude", "category", "states_name_en", "region_en", "iso_code",
    "transboundary",
)
# id_no ranges of the special cases, for tests to find them.
EDGE_IDS = range(1, 100)
CLUSTER_IDS = range(100, 100 + CLUSTER_SIZE * len(CLUSTERS))
ORDINARY_IDS = range(1000, 1000 + ORDINARY)
# A point with sites at exactly equal distance on either side (mirror images on the spheroid).
EQUAL_CENTRE = (20.0, 40.0)

_SYLLABLES = (
    "ba", "cor", "del", "fen", "gar", "hol", "ist", "jun", "kel", "lom", "mar", "nor", "ost",
    "pel", "quin", "ros", "sel", "tor", "ul", "ven", "wen", "yar", "zel", "an", "ev", "ir",
)
_KINDS = (
    "Old Town of {}", "{} National Park", "Archaeological Site of {}", "{} Cathedral",
    "Caves of {}", "{} Lagoon", "Rock Art of {}", "Historic Centre of {}", "{} Forest Reserve",
)
_REGIONS = (
    "Africa", "Arab States", "Asia and the Pacific", "Europe and North America",
    "Latin America and the Caribbean",
)
_CATEGORIES = ("Cultural", "Cultural", "Cultural", "Natural", "Mixed")


@dataclass(frozen=True, slots=True)
class _Site:
    id_no: int
    lat: float
    lon: float
    note: str = ""


def _edge_sites() -> list[_Site]:
    """The hand-placed cases; ids 1..99."""
    c_lat, c_lon = EQUAL_CENTRE
    return [
        _Site(1, 0.0, 0.0, "at (0, 0)"),
        _Site(2, 90.0, 0.0, "at the North Pole"),
        _Site(3, -90.0, 0.0, "at the South Pole"),
        _Site(4, 89.95, 180.0, "near the North Pole, far side"),
        _Site(5, -89.95, -90.0, "near the South Pole"),
        _Site(10, -17.0, 179.98, "west of the antimeridian"),
        _Site(11, -17.0, -179.98, "east of the antimeridian"),
        _Site(12, -16.9, 180.0, "on the antimeridian (180)"),
        _Site(13, -17.1, -180.0, "on the antimeridian (-180)"),
        _Site(14, 65.5, 179.5, "west of the antimeridian, north"),
        _Site(15, 65.5, -179.5, "east of the antimeridian, north"),
        # Mirror images across the meridian and the parallel of EQUAL_CENTRE's longitude are at
        # exactly the same distance from it on the spheroid (east/west pairs).
        _Site(20, c_lat, c_lon + 1.0, "equal distance, east"),
        _Site(21, c_lat, c_lon - 1.0, "equal distance, west"),
        _Site(22, c_lat, c_lon + 2.5, "equal distance, far east"),
        _Site(23, c_lat, c_lon - 2.5, "equal distance, far west"),
        # Several sites on one coordinate.
        _Site(30, -33.5, 18.25, "shared coordinate"),
        _Site(31, -33.5, 18.25, "shared coordinate"),
        _Site(32, -33.5, 18.25, "shared coordinate"),
        _Site(33, 51.25, -0.75, "shared coordinate"),
        _Site(34, 51.25, -0.75, "shared coordinate"),
    ]


def _clustered(rng: random.Random) -> Iterator[_Site]:
    next_id = CLUSTER_IDS.start
    for lat, lon in CLUSTERS:
        for _ in range(CLUSTER_SIZE):
            # Within about 20 km of the centre: a dozen sites per cache cell's neighbourhood.
            yield _Site(next_id, lat + rng.uniform(-0.2, 0.2), lon + rng.uniform(-0.25, 0.25))
            next_id += 1


def _ordinary(rng: random.Random) -> Iterator[_Site]:
    for n in range(ORDINARY):
        # Uniform over the sphere's area (not over lat/lon), rounded as the export rounds.
        lat = math.degrees(math.asin(rng.uniform(-1.0, 1.0)))
        lon = rng.uniform(-180.0, 180.0)
        yield _Site(ORDINARY_IDS.start + n, round(lat, 6), round(lon, 6))


def _name(rng: random.Random) -> str:
    word = "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 3))).capitalize()
    return rng.choice(_KINDS).format(word)


def sample_rows(seed: int = SEED) -> list[dict[str, str]]:
    """The invented list as CSV-export rows (strings keyed by the export's column names).

    Deterministic for a given seed; about 1,200 rows, enough for the planner to prefer the
    GiST index as it does on the real list.
    """
    rng = random.Random(seed)
    sites = [*_edge_sites(), *_clustered(rng), *_ordinary(rng)]
    rows = []
    for s in sites:
        name = _name(rng)
        if s.note:
            name = f"{name} ({s.note})"
        state = _name(rng).split()[-1]
        rows.append({
            "unique_number": str(100000 + s.id_no),
            "id_no": str(s.id_no),
            "name_en": name,
            "short_description_en": f"<p>An invented site, for tests and demos: {name}.</p>",
            "date_inscribed": str(rng.randint(1978, 2021)),
            "danger": "1" if rng.random() < 0.05 else "0",
            "longitude": repr(s.lon),
            "latitude": repr(s.lat),
            "category": rng.choice(_CATEGORIES),
            "states_name_en": f"Republic of {state}",
            "region_en": rng.choice(_REGIONS),
            "iso_code": "x" + rng.choice("abcdefghijklmnopqrstuvwxyz"),
            "transboundary": "1" if rng.random() < 0.03 else "0",
        })
    return rows


def sample_csv(seed: int = SEED) -> bytes:
    """The invented list as a CSV file's bytes, in the export's dialect (BOM, CRLF)."""
    out = io.StringIO(newline="")
    writer = csv.DictWriter(out, fieldnames=HEADER, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(sample_rows(seed))
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def write_sample_csv(path: Path, seed: int = SEED) -> Path:
    """Write the invented list to `path` (for tools that want a file) and return the path."""
    path.write_bytes(sample_csv(seed))
    return path
