"""The service's configuration, read from the environment (names in README, "Settings")."""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class Settings(BaseSettings):
    """Every knob of the app and the loader; defaults suit `make demo` on one machine."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore", frozen=True)

    database_url: str = "postgresql://whc:whc@127.0.0.1:5432/whc"
    ws_proxy: str = "127.0.0.1:9876/v2"
    ws_secure: bool = False
    # /playground: the read-only role's DSN (sql/playground_role.sql), with the database host as
    # the proxy sees it, and the proxy as visitors' browsers reach it (empty: use ws_proxy).
    playground_database_url: str = "postgresql://playground:playground@127.0.0.1:5432/whc"
    playground_ws_proxy: str = ""
    db_mode: Literal["pool", "connect", "http"] = "pool"
    # DB_MODE=http: the proxy's SQL-over-HTTP endpoint (SQL_HTTP_LISTEN), one POST per query
    sql_http_endpoint: str = "http://127.0.0.1:9877/sql"
    pool_min_size: int = Field(default=1, ge=0)
    pool_size: int = Field(default=10, ge=1)
    db_timeout_s: float = Field(default=5.0, gt=0)
    retry_after_s: int = Field(default=5, ge=1)

    cache_ttl_s: float = Field(default=86400.0, gt=0)
    cache_max_cells: int = Field(default=100_000, ge=1)
    cache_url: str | None = None

    trusted_proxies: Annotated[list[Network], NoDecode] = []
    cdn_headers: Literal["none", "cloudflare", "vercel"] = "none"
    geoip_db_path: Path | None = None
    default_latitude: float = 37.7749
    default_longitude: float = -122.4194
    default_place: str = "San Francisco"

    whc_data: Path | None = None
    download_timeout_s: float = Field(default=60.0, gt=0)

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_networks(cls, value: object) -> object:
        """Accept `10.0.0.0/8,127.0.0.1` from the environment as well as a list."""
        if isinstance(value, str):
            parts = (v.strip() for v in value.split(","))
            return [ipaddress.ip_network(v, strict=False) for v in parts if v]
        return value


@lru_cache
def get_settings() -> Settings:
    return Settings()
