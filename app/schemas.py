"""The JSON the API speaks, as Pydantic models so /docs shows the real schema."""

from __future__ import annotations

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
