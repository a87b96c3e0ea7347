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
    # wss:// or ws:// from the visitor's browser, which need not match the app's own hop to the
    # proxy (e.g. ws:// inside the backend network, wss:// through the front); empty: ws_secure.
    playground_ws_secure: bool | None = None
    # The page's map draws offline outlines; an online raster tile layer only when set, e.g.
    # "https://tiles.example.org/{z}/{x}/{y}.png" (then its attribution is required too).
    map_tiles_url: str = ""
    map_tiles_attribution: str = ""
    db_mode: Literal["pool", "connect", "http"] = "pool"
    # DB_MODE=http: the proxy's SQL-over-HTTP endpoint (SQL_HTTP_LISTEN), one POST per query
    sql_http_endpoint: str = "http://127.0.0.1:9877/sql"
    pool_min_size: int = Field(default=1, ge=0)
    pool_size: int = Field(default=10, ge=1)
    db_timeout_s: float = Field(default=5.0, gt=0)
    # The driver's named-statement cache; set 0 when DATABASE_URL points at PgBouncer in
    # transaction mode (compose.yaml does), where a named statement meets other clients'.
    statement_cache_size: int = Field(default=100, ge=0)
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

    # Serving (app/serve.py, `python -m app.serve`) and load shedding (app/shedding.py): limits
    # that hold when uvicorn faces clients alone; behind the front (deploy/nginx.conf) they
    # back up the front's own. workers=0: one per CPU core.
    host: str = "0.0.0.0"
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=0, ge=0)
    http_impl: Literal["h11", "httptools"] = "h11"
    max_header_bytes: int = Field(default=16384, ge=1024)
    limit_concurrency: int = Field(default=4096, ge=1)
    backlog: int = Field(default=2048, ge=1)
    timeout_keep_alive_s: int = Field(default=5, ge=1)
    access_log: bool = False
    max_active_requests: int = Field(default=64, ge=0)
    max_queued_requests: int = Field(default=256, ge=0)
    queue_timeout_s: float = Field(default=0.5, gt=0)

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
