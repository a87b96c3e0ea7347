"""app.schemas' encoder writes the JSON pydantic would write for NearestOut, for any values.

Compared as parsed JSON with key order kept: floats may be spelled differently (Python's repr
writes `1e+16`, pydantic `1e16`) yet read back as the same float, which is what a client sees.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.schemas import NearestOut, SiteOut, nearest_body, site_fragments, sites_array
from app.sites import Site

# no lone surrogates: neither encoder can write them as UTF-8
TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=30)
FINITE = st.floats(allow_nan=False, allow_infinity=False)


def _ordered(raw: bytes | str) -> Any:
    """JSON parsed into nested lists of (key, value) pairs, so that key order counts."""
    return json.loads(raw, object_pairs_hook=list)


SITES = st.builds(
    Site,
    id_no=st.integers(0, 2**53),
    name_en=TEXT,
    category=TEXT,
    states_name_en=TEXT,
    iso_code=TEXT,
    date_inscribed=st.integers(-(2**31), 2**31),
    latitude=FINITE,
    longitude=FINITE,
)


@given(
    sites=st.lists(st.tuples(SITES, st.floats(min_value=0, allow_infinity=False)), max_size=5),
    via_ip=st.booleans(),
    longitude=FINITE,
    latitude=FINITE,
    location=TEXT,
    cached=st.booleans(),
)
def test_encoder_writes_what_the_model_would(
    sites: list[tuple[Site, float]],
    via_ip: bool,
    longitude: float,
    latitude: float,
    location: str,
    cached: bool,
) -> None:
    ours = nearest_body(
        via_ip=via_ip,
        longitude=longitude,
        latitude=latitude,
        location=location,
        cached=cached,
        nearest_sites=sites_array((site_fragments(s), d) for s, d in sites),
    )
    model = NearestOut(
        viaIp=via_ip,
        longitude=longitude,
        latitude=latitude,
        location=location,
        cached=cached,
        nearestSites=[
            SiteOut(
                id_no=s.id_no,
                name_en=s.name_en,
                category=s.category,
                distance=d,
                states_name_en=s.states_name_en,
                iso_code=s.iso_code,
                date_inscribed=s.date_inscribed,
                latitude=s.latitude,
                longitude=s.longitude,
            )
            for s, d in sites
        ],
    )
    assert _ordered(ours) == _ordered(model.model_dump_json(by_alias=True))
    # and the model reads our bytes back as the same values
    assert NearestOut.model_validate_json(ours) == model


def test_a_non_finite_value_is_refused_not_written_as_invalid_json() -> None:
    site = Site(1, "x", "Natural", "y", "z", 2000, float("nan"), 0.0)
    with pytest.raises(ValueError, match="JSON compliant"):
        site_fragments(site)
