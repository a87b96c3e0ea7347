"""The shared cell cache in a real redis-server: replicas share work, and a Redis outage
only costs speed, never answers."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from app.cache import REDIS_PREFIX
from tests.app.apphelp import metric, serve
from tests.app.conftest import DB
from tools.pgcluster import free_port
from tools.procs import start_and_wait, stop


class RedisServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc, _ = start_and_wait(
            [
                "/usr/bin/redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "yes",
            ],
            "Ready to accept connections",
            stream="stdout",
        )

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)
            self.proc = None


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def test_replicas_share_cells_through_redis(sites_db: DB, redis_server: RedisServer) -> None:
    settings = sites_db.settings(cache_url=redis_server.url, cache_ttl_s=120)
    params = {"lat": 59.3293, "lon": 18.0686}
    async with serve(settings) as (first, client1), serve(settings) as (second, client2):
        a = await client1.get("/api/nearest", params=params)
        assert a.json()["cached"] is False
        assert metric(first, "whc_cache_lookups_total", source="database") == 1

        b = await client2.get("/api/nearest", params={"lat": 59.3294, "lon": 18.0687})
        assert b.json()["cached"] is True
        assert metric(second, "whc_cache_lookups_total", source="shared") == 1
        assert metric(second, "whc_db_query_seconds_count", outcome="ok") == 0
        assert [s["id_no"] for s in b.json()["nearestSites"]] == [
            s["id_no"] for s in a.json()["nearestSites"]
        ]
        # the in-process cache stays in front: the repeat never reaches Redis
        c = await client2.get("/api/nearest", params=params)
        assert c.json()["cached"] is True
        assert metric(second, "whc_cache_lookups_total", source="memory") == 1

        import redis.asyncio

        r = redis.asyncio.Redis.from_url(redis_server.url)
        try:
            keys = await r.keys(REDIS_PREFIX + "*")
            assert keys == [f"{REDIS_PREFIX}59.33:18.07:10".encode()]
            ttl = await r.pttl(keys[0])
            assert 0 < ttl <= 120_000
        finally:
            await r.aclose()


async def test_redis_down_costs_speed_not_answers(
    sites_db: DB, redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    settings = sites_db.settings(cache_url=redis_server.url)
    async with serve(settings) as (app, client):
        redis_server.stop()
        r = await client.get("/api/nearest", params={"lat": 30.0, "lon": 31.2})
        assert r.status_code == 200 and r.json()["nearestSites"]
        assert metric(app, "whc_cache_lookups_total", source="database") == 1
        assert any("shared cache read failed" in rec.getMessage() for rec in caplog.records)
        assert any("shared cache write failed" in rec.getMessage() for rec in caplog.records)
