"""Cells, cell radii and the sphere distance the cache re-ranks with."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from app.geo import EARTH_RADIUS_M, Point, cell_centre, cell_radius, grid_key, sphere_distance

lats = st.floats(-90, 90, allow_nan=False)
lons = st.floats(-180, 180, allow_nan=False)


def test_grid_key_rounds_to_two_decimals_and_folds_negative_zero() -> None:
    assert grid_key(Point(48.8566, 2.3522)) == (48.86, 2.35)
    assert grid_key(Point(-0.001, -0.004)) == (0.0, 0.0)
    assert str(grid_key(Point(-0.001, 0.0))[0]) == "0.0"
    assert grid_key(Point(37.77493, -122.41942)) == (37.77, -122.42)


@given(lats, lons)
def test_every_point_lies_within_its_cell_radius(lat: float, lon: float) -> None:
    key = grid_key(Point(lat, lon))
    assert sphere_distance(cell_centre(key), Point(lat, lon)) <= cell_radius(key)


def test_cell_radius_is_about_a_kilometre_and_shrinks_towards_the_poles() -> None:
    equator = cell_radius((0.0, 0.0))
    assert 780 < equator < 790
    assert cell_radius((60.0, 10.0)) < equator
    assert 550 < cell_radius((90.0, 0.0)) < 560


@given(lats, lons, lats, lons)
def test_distance_is_a_metric_on_the_sphere(a1: float, o1: float, a2: float, o2: float) -> None:
    a, b = Point(a1, o1), Point(a2, o2)
    d = sphere_distance(a, b)
    assert 0 <= d <= math.pi * EARTH_RADIUS_M + 1e-6
    assert math.isclose(d, sphere_distance(b, a), rel_tol=1e-12, abs_tol=1e-6)


def test_distance_crosses_the_antimeridian_the_short_way() -> None:
    d = sphere_distance(Point(0, 179.99), Point(0, -179.99))
    assert math.isclose(d, math.radians(0.02) * EARTH_RADIUS_M, rel_tol=1e-9)
