"""Fixtures for the app: a site table loaded with the invented sample list (app/sample.py)
through the real proxy, the real 2021 UNESCO export when it is at hand (tests that need it skip
with the reason otherwise), a scratch database for loader tests, and app settings pointing at
them.

For other app tests: use `sites_db` (read-only, the invented list loaded by the real loader;
`truth()` gives the expected nearest sites from a full-table ST_Distance, never from the KNN
query under test), `scratch_db` (an empty database per test), or `sample_csv` (the invented list
as a CSV file in the export's format). Find the sample's special cases by the id ranges in
app/sample.py (EDGE_IDS, CLUSTER_IDS), never by name.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

import driver
from app.geo import Point
from app.load import SAMPLE_SOURCE, replace_sites
from app.sample import write_sample_csv
from app.settings import Settings
from app.sources import read_file, validate
from tools.pgcluster import Cluster

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SAMPLE_XML = FIXTURES / "whc-sample.xml"
ARTIFACTS = ROOT / "test-artifacts"


def whc_csv_path() -> Path | None:
    """The real 2021 CSV export (WHC_DATA, else ../shared/data/whc-sites-2021.csv): read in
    place, never copied into the repo; None when it is not on this machine."""
    env = os.environ.get("WHC_DATA")
    path = Path(env) if env else ROOT.parent / "shared" / "data" / "whc-sites-2021.csv"
    return path if path.is_file() else None


@pytest.fixture(scope="session")
def whc_csv() -> Path:
    """The real export, for tests about its format; they skip (with the reason) without it."""
    path = whc_csv_path()
    if path is None:
        pytest.skip(
            "the real UNESCO 2021 CSV export is not on this machine (set WHC_DATA or put it "
            "at ../shared/data/whc-sites-2021.csv)"
        )
    return path


@pytest.fixture(scope="session")
def sample_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The invented list (app/sample.py) as a CSV file in the export's format."""
    return write_sample_csv(tmp_path_factory.mktemp("sample") / "whc-sample.csv")


async def truth(conn: Any, point: Point, k: int) -> list[tuple[int, float]]:
    """The `k` nearest (id_no, metres) by ST_Distance over the whole table, sorted here: an
    answer that shares nothing with the KNN query and index the app uses. On the sphere
    (`false`), the metric the app's `<->` ranks by."""
    rows = await conn.fetch(
        "SELECT id_no, ST_Distance(location,"
        " ST_SetSRID(ST_MakePoint($1, $2), 4326)::geography, false) FROM whc_sites",
        point.longitude, point.latitude,
    )
    return sorted(((int(r[0]), float(r[1])) for r in rows), key=lambda r: (r[1], r[0]))[:k]


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
async def sites_db(pg: Cluster, proxy: Any, sample_csv: Path) -> AsyncIterator[DB]:
    """A database holding the invented list (app/sample.py, read back from its CSV form),
    loaded once by the real loader and recorded as the sample; read-only for its tests."""
    db = DB(pg, proxy.ws_proxy, "whc_sites_test", proxy.sql_url)
    _new_database(pg, db.name)
    sites, rejected = validate(read_file(sample_csv))
    assert not rejected
    conn = await db.connect()
    try:
        await replace_sites(conn, sites, source=SAMPLE_SOURCE, sample=True)
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
