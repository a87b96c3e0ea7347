"""The JSON the API speaks: Pydantic models for /docs, and the one encoder of the hot route's bytes.

`/api/nearest` does not serialise a `NearestOut` per request: a cell's sites are encoded once
(`site_fragments`, with a gap for the distance) and each answer is glued from bytes
(`sites_array`, `nearest_body`). These three functions are the only code that writes that JSON;
tests/app/test_app_encoder.py checks them against the models for generated values.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field


class SiteOut(BaseModel):
    """One World Heritage site and how far it is from the visitor."""

    id_no: int = Field(description="UNESCO's number; page: whc.unesco.org/en/list/<id_no>/")
    name_en: str
    category: str = Field(description="Cultural, Natural or Mixed")
    distance: float = Field(description="great-circle distance from the visitor, in metres")
    states_name_en: str = Field(description="the country or countries, comma-separated")
    iso_code: str = Field(description="ISO 3166 alpha-2 codes, comma-separated, lower case")
    date_inscribed: int = Field(description="year of inscription on the list")
    latitude: float
    longitude: float


class NearestOut(BaseModel):
    """The answer of /api/nearest; field names follow the original demo."""

    model_config = ConfigDict(populate_by_name=True)

    via_ip: bool = Field(alias="viaIp", description="true unless the caller sent coordinates")
    longitude: float
    latitude: float
    location: str = Field(description="how the position was found, in words")
    cached: bool = Field(
        description="true when the answer came from a cache (this replica's or the shared one) "
        "without a database query"
    )
    nearest_sites: list[SiteOut] = Field(alias="nearestSites")


class ErrorOut(BaseModel):
    """A 503 body: what is wrong, and the Retry-After header says when to try again."""

    detail: str
    reason: str


class SiteFields(Protocol):
    """What `site_fragments` reads: SiteOut's fields but the distance (app.sites.Site has them)."""

    @property
    def id_no(self) -> int: ...
    @property
    def name_en(self) -> str: ...
    @property
    def category(self) -> str: ...
    @property
    def states_name_en(self) -> str: ...
    @property
    def iso_code(self) -> str: ...
    @property
    def date_inscribed(self) -> int: ...
    @property
    def latitude(self) -> float: ...
    @property
    def longitude(self) -> float: ...


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def site_fragments(site: SiteFields) -> tuple[bytes, bytes]:
    """A site's SiteOut JSON (fields in the model's order) cut where the distance goes.

    Computed once per cached site; `sites_array` puts a distance between the two halves.
    """
    head = _json({"id_no": site.id_no, "name_en": site.name_en, "category": site.category})
    tail = _json(
        {
            "states_name_en": site.states_name_en,
            "iso_code": site.iso_code,
            "date_inscribed": site.date_inscribed,
            "latitude": site.latitude,
            "longitude": site.longitude,
        }
    )
    return (head[:-1] + ',"distance":').encode(), ("," + tail[1:]).encode()


def sites_array(ranked: Iterable[tuple[tuple[bytes, bytes], float]]) -> bytes:
    """`nearestSites`: a JSON array of sites from their fragments and distances (metres)."""
    return b"[" + b",".join(head + repr(d).encode() + tail for (head, tail), d in ranked) + b"]"


def nearest_body(
    *,
    via_ip: bool,
    longitude: float,
    latitude: float,
    location: str,
    cached: bool,
    nearest_sites: bytes,
) -> bytes:
    """A NearestOut body (by alias) around `nearest_sites`, the bytes `sites_array` built."""
    head = _json(
        {
            "viaIp": via_ip,
            "longitude": longitude,
            "latitude": latitude,
            "location": location,
            "cached": cached,
        }
    )
    return head[:-1].encode() + b',"nearestSites":' + nearest_sites + b"}"
