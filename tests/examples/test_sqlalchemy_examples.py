"""The SQLAlchemy examples in examples/ run as documented: Alembic migrations through the
proxy, and the SQLModel + FastAPI app answering from a database shaped like the demo's."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.conftest import ProxyProcess
from tools.pgcluster import Cluster

ROOT = Path(__file__).resolve().parents[2]

# Invented places (not UNESCO data): id, name, category, lon, lat.
SITES = [
    (1, "Harbour Gate", "Cultural", 2.35, 48.86),
    (2, "Old Mill", "Cultural", 2.10, 48.80),
    (3, "Fern Valley", "Natural", 4.80, 45.75),
    (4, "Salt Flats", "Mixed", -3.70, 40.42),
]


@pytest.fixture
def scratch_db(pg: Cluster) -> Iterator[str]:
    """A database owned by scram_user, dropped afterwards; yields its name."""
    name = "ex_" + uuid.uuid4().hex[:8]
    pg.psql(f"CREATE DATABASE {name} OWNER scram_user", db="postgres")
    try:
        yield name
    finally:
        pg.psql(f"DROP DATABASE {name} WITH (FORCE)", db="postgres")


def pgws_url(pg: Cluster, proxy: ProxyProcess, db: str) -> str:
    dsn = pg.dsn("scram_user").replace("postgresql://", "postgresql+pgws://", 1)
    return dsn.rsplit("/", 1)[0] + f"/{db}?ws_proxy={proxy.ws_proxy}&use_secure_websocket=false"


def test_alembic_upgrade_and_downgrade_through_the_proxy(
    pg: Cluster, proxy: ProxyProcess, scratch_db: str
) -> None:
    env = {**os.environ, "DATABASE_URL": pgws_url(pg, proxy, scratch_db)}
    ini = str(ROOT / "examples" / "alembic" / "alembic.ini")

    def alembic(*args: str) -> None:
        subprocess.run(
            [sys.executable, "-m", "alembic", "-c", ini, *args],
            check=True,
            env=env,
            cwd=ROOT,
            timeout=120,
            capture_output=True,
        )

    alembic("upgrade", "head")
    assert pg.psql("select to_regclass('visit_log') is not null", db=scratch_db) == "t"
    assert pg.psql("select version_num from alembic_version", db=scratch_db) == "0001"
    alembic("downgrade", "base")
    assert pg.psql("select to_regclass('visit_log') is null", db=scratch_db) == "t"


def test_sqlmodel_app_answers_from_the_site_table(
    pg: Cluster, proxy: ProxyProcess, scratch_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pg.psql((ROOT / "sql" / "schema.sql").read_text(), db=scratch_db)
    values = ", ".join(
        f"({i}, '{n}', '{c}', 2000, ST_SetSRID(ST_MakePoint({lon}, {lat}), 4326)::geography)"
        for i, n, c, lon, lat in SITES
    )
    pg.psql(
        "INSERT INTO whc_sites (id_no, name_en, category, date_inscribed, location) "
        f"VALUES {values}; GRANT SELECT ON whc_sites TO scram_user",
        db=scratch_db,
    )
    here = "ST_SetSRID(ST_MakePoint(2.30, 48.85), 4326)::geography"
    expected = pg.psql(
        f"select string_agg(id_no::text, ',' order by ST_Distance(location, {here})) "
        "from whc_sites",
        db=scratch_db,
    )
    monkeypatch.setenv("DATABASE_URL", pgws_url(pg, proxy, scratch_db))
    from examples.sqlmodel_app import app

    with TestClient(app) as client:
        got = client.get("/sites/nearest", params={"lat": 48.85, "lon": 2.30, "limit": 4})
        assert got.status_code == 200, got.text
        assert ",".join(str(s["id_no"]) for s in got.json()) == expected
        assert got.json()[0]["distance_km"] < got.json()[1]["distance_km"]
        one = client.get("/sites/3")
        assert one.status_code == 200 and one.json()["name_en"] == "Fern Valley"
        assert client.get("/sites/99").status_code == 404
        assert client.get("/sites/nearest", params={"lat": 91, "lon": 0}).status_code == 422
