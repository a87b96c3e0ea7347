"""Faults caused for real: the proxy stopped and restarted, the app started before the proxy,
a table lock that outlasts the query deadline, a wrong password. Each answers 503 JSON with a
reason and Retry-After, never a traceback, and the app recovers by itself."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from app.geo import Point
from app.load import replace_sites
from app.sources import read_file, validate
from tests.app.apphelp import metric, serve
from tests.app.conftest import DB, ROOT, SAMPLE_XML, truth
from tools.pgcluster import Cluster, destroy, free_port, start_temp_cluster
from tools.procs import start_and_wait, stop

MODES = ["pool", "connect"]


class OwnProxy:
    """A proxy process this module may stop and start again on the same port."""

    def __init__(self, pg: Cluster) -> None:
        self.port = free_port()
        self.env = {
            "LISTEN_PORT": f"127.0.0.1:{self.port}",
            "ALLOW_ADDR_REGEX": rf"(127\.0\.0\.1|localhost):{pg.port}",
        }
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def ws_proxy(self) -> str:
        return f"127.0.0.1:{self.port}/v2"

    def start(self) -> None:
        self.proc, _ = start_and_wait(
            [sys.executable, "-m", "proxy"], "listening", env={**self.env, "PYTHONPATH": str(ROOT)}
        )

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)
            self.proc = None


@pytest.fixture
def own_proxy(pg: Cluster) -> Iterator[OwnProxy]:
    p = OwnProxy(pg)
    try:
        yield p
    finally:
        p.stop()


def assert_503(r: object) -> dict[str, str]:
    assert r.status_code == 503  # type: ignore[attr-defined]
    assert r.headers["retry-after"] == "5"  # type: ignore[attr-defined]
    body: dict[str, str] = r.json()  # type: ignore[attr-defined]
    assert set(body) == {"detail", "reason"}
    assert "Traceback" not in r.text  # type: ignore[attr-defined]
    return body


@pytest.mark.parametrize("mode", MODES)
async def test_proxy_down_then_back(sites_db: DB, own_proxy: OwnProxy, mode: str) -> None:
    own_proxy.start()
    db = DB(sites_db.pg, own_proxy.ws_proxy, sites_db.name)
    async with serve(db.settings(db_mode=mode, db_timeout_s=5.0)) as (app, client):
        warm = await client.get("/api/nearest", params={"lat": 51.5, "lon": -0.12})
        assert warm.status_code == 200

        own_proxy.stop()
        r = await client.get("/api/nearest", params={"lat": -13.16, "lon": -72.54})
        assert "proxy" in assert_503(r)["reason"]
        assert_503(await client.get("/readyz"))
        # a cell already in the cache still answers while the database is out of reach
        cached = await client.get("/api/nearest", params={"lat": 51.5001, "lon": -0.1201})
        assert cached.status_code == 200 and cached.json()["cached"] is True

        own_proxy.start()  # same port
        assert (await client.get("/readyz")).status_code == 200
        r = await client.get("/api/nearest", params={"lat": -13.16, "lon": -72.54})
        conn = await sites_db.connect()
        try:
            want = await truth(conn, Point(-13.16, -72.54), 1)
        finally:
            await conn.close()
        assert r.status_code == 200 and r.json()["nearestSites"][0]["id_no"] == want[0][0]
        assert metric(app, "whc_http_requests_total", route="/api/nearest", status="503") == 1


@pytest.mark.parametrize("mode", MODES)
async def test_app_started_before_the_proxy_becomes_ready(
    sites_db: DB, own_proxy: OwnProxy, mode: str
) -> None:
    db = DB(sites_db.pg, own_proxy.ws_proxy, sites_db.name)
    async with serve(db.settings(db_mode=mode)) as (_, client):
        assert (await client.get("/healthz")).status_code == 200
        assert_503(await client.get("/readyz"))
        assert_503(await client.get("/api/nearest", params={"lat": 1, "lon": 1}))
        own_proxy.start()
        assert (await client.get("/readyz")).status_code == 200
        assert (await client.get("/api/nearest", params={"lat": 1, "lon": 1})).status_code == 200


@pytest.mark.parametrize("mode", MODES)
async def test_query_outlasting_its_deadline(sites_db: DB, mode: str) -> None:
    locker = await sites_db.connect()
    try:
        async with serve(sites_db.settings(db_mode=mode, db_timeout_s=0.5)) as (app, client):
            tx = locker.transaction()
            await tx.start()
            await locker.execute("LOCK TABLE whc_sites IN ACCESS EXCLUSIVE MODE")
            r = await client.get("/api/nearest", params={"lat": 64.1, "lon": -21.9})
            assert assert_503(r)["reason"] == "the database did not answer in time"
            assert metric(app, "whc_db_query_seconds_count", outcome="error") == 1
            await tx.rollback()
            r = await client.get("/api/nearest", params={"lat": 64.1, "lon": -21.9})
            assert r.status_code == 200, r.text
    finally:
        await locker.close()


async def test_wrong_password_is_503_with_the_reason(sites_db: DB) -> None:
    bad = sites_db.dsn("scram_user").replace("scr%40m", "wrong")
    async with serve(sites_db.settings(database_url=bad, db_mode="connect")) as (_, client):
        body = assert_503(await client.get("/api/nearest", params={"lat": 1.5, "lon": 1.5}))
        assert "refused" in body["reason"] and "28P01" in body["reason"]


@pytest.fixture(scope="module")
def spare_pg() -> Iterator[Cluster]:
    """A cluster of this module's own, so stopping it disturbs no other test."""
    cluster = start_temp_cluster()
    try:
        yield cluster
    finally:
        destroy(cluster)


@pytest.mark.parametrize("mode", MODES)
async def test_database_down_then_back(spare_pg: Cluster, mode: str) -> None:
    own = OwnProxy(spare_pg)
    own.start()
    try:
        db = DB(spare_pg, own.ws_proxy, "testdb")
        conn = await db.connect()
        try:
            await replace_sites(conn, validate(read_file(SAMPLE_XML))[0])
        finally:
            await conn.close()
        async with serve(db.settings(db_mode=mode)) as (_, client):
            assert (await client.get("/api/nearest", params={"lat": 10, "lon": 20})).json()[
                "nearestSites"][0]["id_no"] == 90001
            spare_pg.stop()
            body = assert_503(await client.get("/api/nearest", params={"lat": -30, "lon": -70}))
            assert "proxy" in body["reason"] or "database" in body["reason"]
            assert_503(await client.get("/readyz"))
            spare_pg.start()
            assert (await client.get("/readyz")).status_code == 200
            r = await client.get("/api/nearest", params={"lat": -30, "lon": -70})
            assert r.status_code == 200 and r.json()["nearestSites"][0]["id_no"] == 90003
    finally:
        own.stop()
        if not spare_pg.is_running():
            spare_pg.start()
