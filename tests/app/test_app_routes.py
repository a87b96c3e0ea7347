"""/api/nearest and friends against the real database through the real proxy, in both
database modes: answers, cache truthfulness, HTTP caching headers, bad input, metrics.

The table holds the invented list (app/sample.py); expected answers come from `truth()` (a
full-table ST_Distance) and, for the special cases, from a spherical distance computed here."""

from __future__ import annotations

import asyncio
import math
import random
from typing import Any

import pytest

from app import sample
from app.geo import Point, grid_key
from app.ranking import Cell
from app.sites import cell_candidates, nearest_exact
from tests.app.apphelp import metric, serve
from tests.app.conftest import DB, truth

MODES = ["pool", "connect", "http"]


async def exact(db: DB, lat: float, lon: float, k: int) -> list[tuple[int, float]]:
    conn = await db.connect()
    try:
        return await truth(conn, Point(lat, lon), k)
    finally:
        await conn.close()


def haversine_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle metres on a sphere of PostGIS's mean radius, by the haversine formula."""
    (lat1, lon1), (lat2, lon2) = (tuple(map(math.radians, p)) for p in (a, b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin(
        (lon2 - lon1) / 2
    ) ** 2
    return 2 * 6371008.8 * math.asin(math.sqrt(min(1.0, h)))


def sample_points() -> dict[int, tuple[float, float]]:
    return {
        int(r["id_no"]): (float(r["latitude"]), float(r["longitude"]))
        for r in sample.sample_rows()
    }


def same_ranking(got: list[tuple[int, float]], want: list[tuple[int, float]]) -> bool:
    """Equal distances rank by rank, and equal ids except where sites tie (the query has no
    second sort key, so the database orders exact ties, including at the cut-off, freely)."""

    def close(a: float, b: float) -> bool:
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6)

    if len(got) != len(want) or len({i for i, _ in got}) != len(got):
        return False
    for (gi, gd), (wi, wd) in zip(got, want, strict=True):
        if not close(gd, wd):
            return False
        tie = any(i == gi and close(d, gd) for i, d in want) or close(gd, want[-1][1])
        if gi != wi and not tie:
            return False
    return True


@pytest.mark.parametrize("mode", MODES)
async def test_explicit_coordinates_answer_the_exact_nearest(sites_db: DB, mode: str) -> None:
    async with serve(sites_db.settings(db_mode=mode)) as (app, client):
        r = await client.get("/api/nearest", params={"lat": 48.8566, "lon": 2.3522})
        assert r.status_code == 200
        body = r.json()
        assert body["viaIp"] is False and body["cached"] is False
        assert (body["latitude"], body["longitude"]) == (48.8566, 2.3522)
        assert "browser" in body["location"]
        sites = body["nearestSites"]
        assert len(sites) == 10
        assert set(sites[0]) >= {"id_no", "name_en", "category", "distance", "states_name_en",
                                 "date_inscribed", "iso_code", "latitude", "longitude"}
        got = [(s["id_no"], s["distance"]) for s in sites]
        want = await exact(sites_db, 48.8566, 2.3522, 10)
        assert same_ranking(got, want)
        first = sites_db.psql(
            f"SELECT name_en, states_name_en, date_inscribed FROM whc_sites "
            f"WHERE id_no = {want[0][0]}"
        )
        assert first == "|".join(
            [sites[0]["name_en"], sites[0]["states_name_en"], str(sites[0]["date_inscribed"])]
        )

        again = await client.get("/api/nearest", params={"lat": 48.8567, "lon": 2.3521})
        assert again.json()["cached"] is True
        assert metric(app, "whc_cache_lookups_total", source="memory") == 1
        assert metric(app, "whc_cache_lookups_total", source="database") == 1
        assert metric(app, "whc_db_query_seconds_count", outcome="ok") == 1


@pytest.mark.parametrize("limit", [1, 7, 50])
async def test_limit_is_honoured(sites_db: DB, limit: int) -> None:
    async with serve(sites_db.settings()) as (_, client):
        r = await client.get("/api/nearest", params={"lat": -33.86, "lon": 151.2, "limit": limit})
        got = [(s["id_no"], s["distance"]) for s in r.json()["nearestSites"]]
        assert same_ranking(got, await exact(sites_db, -33.86, 151.2, limit))


async def test_cached_answers_equal_exact_answers_for_many_random_points(sites_db: DB) -> None:
    """The cell's candidate bound: re-ranking cached candidates for any point of the cell gives
    the database's own answer for that point. Points are drawn world-wide and in dense areas,
    several per cell, with the cell filled from its centre only once."""
    rng = random.Random(20240607)
    conn = await sites_db.connect()
    checked = 0
    try:
        for n in range(150):
            if n % 3 == 0:
                base = Point(rng.uniform(-60, 70), rng.uniform(-180, 180))
            else:  # Europe and East Asia, where sites are close together and ranks are tight
                base = rng.choice([Point(48.0, 8.0), Point(42.0, 12.5), Point(35.0, 135.0)])
                base = Point(
                    base.latitude + rng.uniform(-3, 3), base.longitude + rng.uniform(-3, 3)
                )
            key = grid_key(base)
            cells = {k: Cell.of(await cell_candidates(conn, key, k)) for k in (10, 50)}
            for _ in range(3):
                p = Point(
                    key[0] + rng.uniform(-0.005, 0.005), key[1] + rng.uniform(-0.005, 0.005)
                )
                if grid_key(p) != key:
                    continue
                for k in (10, 50):
                    got = [(s.id_no, d) for s, d in cells[k].rank(p, k)]
                    want = [(s.id_no, d) for s, d in await nearest_exact(conn, p, k)]
                    assert same_ranking(got, want), (p, k, got[:3], want[:3])
                    if checked % 25 == 0:  # and the KNN query against the full-table truth
                        assert same_ranking(want, await truth(conn, p, k)), (p, k)
                    checked += 1
    finally:
        await conn.close()
    assert checked > 600


async def test_concurrent_requests_for_a_cold_cell_query_once(sites_db: DB) -> None:
    async with serve(sites_db.settings()) as (app, client):
        params = [{"lat": 41.9 + i * 1e-4, "lon": 12.49} for i in range(20)]  # one cell
        assert len({grid_key(Point(p["lat"], p["lon"])) for p in params}) == 1
        answers = await asyncio.gather(*(client.get("/api/nearest", params=p) for p in params))
        assert [a.status_code for a in answers] == [200] * 20
        assert metric(app, "whc_db_query_seconds_count", outcome="ok") == 1
        assert metric(app, "whc_cache_lookups_total", source="database") == 1
        assert metric(app, "whc_cache_lookups_total", source="coalesced") == 19
        # cached is only claimed for answers that were already stored when they were asked
        assert sum(a.json()["cached"] for a in answers) == 0


async def test_explicit_answers_are_shareable_and_revalidate(sites_db: DB) -> None:
    async with serve(sites_db.settings()) as (_, client):
        params = {"lat": 35.0, "lon": 135.75}
        r = await client.get("/api/nearest", params=params)
        assert r.headers["cache-control"] == "public, max-age=86400"
        assert r.headers["access-control-allow-origin"] == "*"
        etag = r.headers["etag"]
        assert etag.startswith('W/"')
        # the repeat says cached=true, yet means the same: same validator, 304 on revalidation
        r2 = await client.get("/api/nearest", params=params)
        assert r2.json()["cached"] is True and r2.headers["etag"] == etag
        r3 = await client.get("/api/nearest", params=params, headers={"If-None-Match": etag})
        assert r3.status_code == 304 and r3.content == b""
        assert r3.headers["etag"] == etag
        r4 = await client.get(
            "/api/nearest", params={**params, "limit": 11}, headers={"If-None-Match": etag}
        )
        assert r4.status_code == 200 and r4.headers["etag"] != etag


async def test_located_answers_are_private(sites_db: DB) -> None:
    trusted = sites_db.settings(trusted_proxies="127.0.0.1/32")
    async with serve(trusted) as (_, client):
        r = await client.get("/api/nearest", headers={"X-Forwarded-For": "81.2.69.142"})
        body = r.json()
        assert body["viaIp"] is True and "United Kingdom" in body["location"]
        assert "public" not in r.headers["cache-control"]
        assert "private" in r.headers["cache-control"]
        assert r.headers["vary"].lower() == "x-forwarded-for"
        assert "etag" not in r.headers and "access-control-allow-origin" not in r.headers
    cdn = sites_db.settings(cdn_headers="cloudflare")
    async with serve(cdn) as (_, client):
        r = await client.get(
            "/api/nearest", headers={"cf-iplatitude": "-22.95", "cf-iplongitude": "-43.21"}
        )
        assert r.json()["location"].endswith("(from your IP address, via cloudflare)")
        assert r.headers["cache-control"].startswith("private")
        assert "cf-iplatitude" in r.headers["vary"]


async def test_no_coordinates_and_unknown_address_means_the_default_place(sites_db: DB) -> None:
    async with serve(sites_db.settings()) as (_, client):
        body = (await client.get("/api/nearest")).json()
        assert body["viaIp"] is True
        assert body["location"].startswith("San Francisco (default")
        got = [(x["id_no"], x["distance"]) for x in body["nearestSites"]]
        assert same_ranking(got, await exact(sites_db, 37.7749, -122.4194, 10))


@pytest.mark.parametrize(
    ("params", "field", "words"),
    [
        ({"lat": "91", "lon": "0"}, "lat", "between -90 and 90"),
        ({"lat": "0", "lon": "-180.01"}, "lon", "between -180 and 180"),
        ({"lat": "nan", "lon": "0"}, "lat", "finite"),
        ({"lat": "0", "lon": "inf"}, "lon", "finite"),
        ({"lat": "north", "lon": "0"}, "lat", "must be a number"),
        ({"lat": "10"}, "lon", "together"),
        ({"lon": "10"}, "lat", "together"),
        ({"lat": "1", "lon": "1", "limit": "0"}, "limit", "greater than or equal to 1"),
        ({"lat": "1", "lon": "1", "limit": "51"}, "limit", "less than or equal to 50"),
        ({"lat": "1", "lon": "1", "limit": "ten"}, "limit", "integer"),
    ],
)
async def test_bad_input_is_422_with_the_reason(
    sites_db: DB, params: dict[str, str], field: str, words: str
) -> None:
    async with serve(sites_db.settings()) as (app, client):
        r = await client.get("/api/nearest", params=params)
        assert r.status_code == 422
        detail = r.json()["detail"]
        assert detail[0]["loc"] == ["query", field]
        assert words in detail[0]["msg"]
        assert metric(app, "whc_db_query_seconds_count", outcome="ok") == 0


async def test_operator_endpoints_and_schema(sites_db: DB) -> None:
    async with serve(sites_db.settings()) as (_, client):
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        assert (await client.get("/readyz")).json() == {"status": "ready"}
        await client.get("/api/nearest", params={"lat": 1, "lon": 1})
        text = (await client.get("/metrics")).text
        assert 'whc_http_requests_total{route="/api/nearest",status="200"} 1.0' in text
        assert 'whc_cache_lookups_total{source="database"} 1.0' in text
        assert "whc_db_query_seconds_bucket" in text
        spec: dict[str, Any] = (await client.get("/openapi.json")).json()
        out = spec["components"]["schemas"]["NearestOut"]["properties"]
        assert {"viaIp", "latitude", "longitude", "location", "cached", "nearestSites"} <= set(out)
        ok = spec["paths"]["/api/nearest"]["get"]["responses"]
        assert {"200", "422", "503"} <= set(ok)
        page = await client.get("/")
        assert page.status_code == 200 and "GeoLite2" in page.text and "UNESCO" in page.text
        outline = await client.get("/map/countries-110m.json")
        assert outline.status_code == 200 and outline.json()["type"] == "Topology"


async def test_a_cell_keeps_two_candidate_tiers(sites_db: DB) -> None:
    """Up to 10 sites re-rank a dozen candidates; more use the 50-site tier of the same cell."""
    async with serve(sites_db.settings()) as (app, client):
        here = {"lat": 50.08, "lon": 14.42}
        for limit, source in ((3, "database"), (10, "memory"), (11, "database"), (50, "memory")):
            before = metric(app, "whc_cache_lookups_total", source=source)
            r = await client.get("/api/nearest", params={**here, "limit": limit})
            assert len(r.json()["nearestSites"]) == limit
            assert metric(app, "whc_cache_lookups_total", source=source) == before + 1
        assert metric(app, "whc_db_query_seconds_count", outcome="ok") == 2


async def _nearest(client: Any, lat: float, lon: float, limit: int) -> list[tuple[int, float]]:
    r = await client.get("/api/nearest", params={"lat": lat, "lon": lon, "limit": limit})
    assert r.status_code == 200
    return [(x["id_no"], x["distance"]) for x in r.json()["nearestSites"]]


@pytest.mark.parametrize(
    ("lat", "lon", "expect_first"),
    [
        (-17.0, 179.999, {10, 11, 12, 13}),  # the antimeridian, from the west side
        (-17.0, -179.999, {10, 11, 12, 13}),  # and from the east side
        (65.5, 180.0, {14, 15}),
        (89.99, 45.0, {2, 4}),  # near the North Pole: the pole site, or the one past it
        (-89.99, 100.0, {3, 5}),
        (0.0, 0.0, {1}),
        (0.0001, -0.0001, {1}),
    ],
)
async def test_edge_places_answer_the_truth(
    sites_db: DB, lat: float, lon: float, expect_first: set[int]
) -> None:
    """Across the antimeridian, at the poles and at (0, 0) the API, the full-table truth and a
    spherical distance computed here agree; nearest sites on the other side of 180 count."""
    points = sample_points()
    async with serve(sites_db.settings()) as (_, client):
        for limit in (5, 10):  # both candidate tiers of the cell cache
            got = await _nearest(client, lat, lon, limit)
            assert same_ranking(got, await exact(sites_db, lat, lon, limit))
            assert got[0][0] in expect_first, got[:3]
            # a sphere's distances computed here, independent of PostGIS, agree
            spherical = sorted(points, key=lambda i: haversine_m((lat, lon), points[i]))
            assert spherical[0] == got[0][0] or haversine_m(
                (lat, lon), points[spherical[0]]
            ) == pytest.approx(haversine_m((lat, lon), points[got[0][0]]), rel=0.01)
            for i, d in got:
                assert d == pytest.approx(haversine_m((lat, lon), points[i]), rel=1e-6, abs=0.01)


async def test_equal_distances_and_shared_coordinates(sites_db: DB) -> None:
    """Mirror-image sites are equally far and both come before anything farther; sites on one
    coordinate all come back at distance 0, whatever their order."""
    c_lat, c_lon = sample.EQUAL_CENTRE
    async with serve(sites_db.settings()) as (_, client):
        got = await _nearest(client, c_lat, c_lon, 4)
        assert {i for i, _ in got[:2]} == {20, 21} and {i for i, _ in got[2:]} == {22, 23}
        assert got[0][1] == pytest.approx(got[1][1], rel=1e-9)
        assert got[2][1] == pytest.approx(got[3][1], rel=1e-9)
        assert same_ranking(got, await exact(sites_db, c_lat, c_lon, 4))
        got = await _nearest(client, -33.5, 18.25, 3)
        assert {i for i, _ in got} == {30, 31, 32} and all(d == 0 for _, d in got)
        got = await _nearest(client, 51.25, -0.75, 5)
        assert {i for i, _ in got[:2]} == {33, 34} and got[1][1] == 0 < got[2][1]
