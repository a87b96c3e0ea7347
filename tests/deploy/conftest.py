"""Fixtures for the deployment tests: a database of invented sites reached through the real
proxy (nothing from outside the repo), and the playground role on it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.app.conftest import DB, ROOT
from tests.app.conftest import scratch_db as scratch_db  # a fresh database with PostGIS
from tools.pgcluster import Cluster

# Invented sites on a grid (never rows of the real UNESCO list), distinct distances from any
# probe point, one of them near San Francisco (the app's default location).
SITES_SQL = """
INSERT INTO whc_sites (id_no, name_en, category, states_name_en, iso_code, date_inscribed,
                       location)
SELECT i, 'Invented site ' || i, (ARRAY['Cultural','Natural','Mixed'])[1 + i % 3],
       'Inventia', 'iv', 1978 + i % 40,
       ST_SetSRID(ST_MakePoint(-170 + (i % 20) * 17.3 + i * 0.013,
                               -60 + (i / 20) * 11.1 + i * 0.007), 4326)::geography
FROM generate_series(1, 240) AS i;
INSERT INTO whc_sites (id_no, name_en, category, date_inscribed, location)
VALUES (999, 'Invented bay site', 'Natural', 2000, 'SRID=4326;POINT(-122.41 37.77)');
"""


def make_sample_db(pg: Cluster, ws_proxy: str, prefix: str = "whc_deploy_") -> DB:
    db = DB(pg, ws_proxy, prefix + uuid.uuid4().hex[:8])
    pg.psql(f"CREATE DATABASE {db.name}", db="postgres")
    db.psql((ROOT / "sql" / "schema.sql").read_text())
    db.psql(SITES_SQL)
    db.psql((ROOT / "sql" / "playground_role.sql").read_text())
    db.psql("GRANT SELECT ON whc_sites TO scram_user")
    return db


@pytest.fixture(scope="session")
def sample_db(pg: Cluster, proxy: Any) -> Iterator[DB]:
    db = make_sample_db(pg, proxy.ws_proxy)
    try:
        yield db
    finally:
        pg.psql(f"DROP DATABASE IF EXISTS {db.name} WITH (FORCE)", db="postgres")
