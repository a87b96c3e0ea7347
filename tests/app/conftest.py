"""Fixtures for the app: the shared UNESCO CSV, a loaded site table reached through the real
proxy, a scratch database for loader tests, and app settings pointing at them."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

import driver
from app.load import replace_sites
from app.settings import Settings
from app.sources import read_file, validate
from tools.pgcluster import Cluster

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SAMPLE_XML = FIXTURES / "whc-sample.xml"
ARTIFACTS = ROOT / "test-artifacts"


def whc_csv_path() -> Path:
    """The shared 2021 CSV export: read in place, never copied into the repo."""
    env = os.environ.get("WHC_DATA")
    path = Path(env) if env else ROOT.parent / "shared" / "data" / "whc-sites-2021.csv"
    assert path.is_file(), f"the UNESCO CSV is missing at {path} (set WHC_DATA)"
    return path


@pytest.fixture(scope="session")
def whc_csv() -> Path:
    return whc_csv_path()


class DB:
    """Where a test database lives and how to reach it through the proxy."""

    def __init__(self, pg: Cluster, ws_proxy: str, name: str, sql_url: str = "") -> None:
        self.pg, self.ws_proxy, self.name = pg, ws_proxy, name
        self.sql_url = sql_url  # the proxy's POST /sql, for DB_MODE=http

    def dsn(self, role: str = "scram_user") -> str:
        return self.pg.dsn(role).replace("/testdb", f"/{self.name}")

    async def connect(self, role: str = "scram_user") -> Any:
        return await driver.connect(
            self.dsn(role), ws_proxy=self.ws_proxy, use_secure_websocket=False
        )

    def settings(self, **overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "database_url": self.dsn(),
            "ws_proxy": self.ws_proxy,
            "ws_secure": False,
            "db_timeout_s": 10.0,
            **({"sql_http_endpoint": self.sql_url} if self.sql_url else {}),
            **overrides,
        }
        return Settings(**values)

    def psql(self, sql: str) -> str:
        return self.pg.psql(sql, db=self.name)


TEMPLATE = "whc_template"


def _new_database(pg: Cluster, name: str) -> None:
    """A database with PostGIS, cloned from a template (much faster than CREATE EXTENSION)."""
    exists = pg.psql(f"SELECT 1 FROM pg_database WHERE datname = '{TEMPLATE}'", db="postgres")
    if not exists:
        pg.psql(f"CREATE DATABASE {TEMPLATE}", db="postgres")
        pg.psql(
            "CREATE EXTENSION IF NOT EXISTS postgis; GRANT ALL ON SCHEMA public TO PUBLIC;",
            db=TEMPLATE,
        )
    pg.psql(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}", db="postgres")


@pytest.fixture(scope="session")
async def sites_db(pg: Cluster, proxy: Any, whc_csv: Path) -> AsyncIterator[DB]:
    """A database holding the whole shared list, loaded once by the real loader; read-only
    for the tests that use it."""
    db = DB(pg, proxy.ws_proxy, "whc_sites_test", proxy.sql_url)
    _new_database(pg, db.name)
    sites, rejected = validate(read_file(whc_csv))
    assert not rejected
    conn = await db.connect()
    try:
        await replace_sites(conn, sites)
    finally:
        await conn.close()
    yield db


@pytest.fixture
def scratch_db(pg: Cluster, proxy: Any) -> Iterator[DB]:
    """A fresh, empty database per test, for loads that succeed, fail or replace data."""
    db = DB(pg, proxy.ws_proxy, "whc_scratch_" + uuid.uuid4().hex[:8])
    _new_database(pg, db.name)
    try:
        yield db
    finally:
        pg.psql(f"DROP DATABASE IF EXISTS {db.name} WITH (FORCE)", db="postgres")


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
