"""Connect and query with each role over each transport."""

from __future__ import annotations

from typing import Any

import pytest

import driver
from tests.conftest import ProxyProcess
from tests.driver.conftest import ROLES, ConnectArgs
from tools.pgcluster import Cluster


@pytest.mark.parametrize("role", ROLES)
async def test_connect_each_role(connect_args: ConnectArgs, transport: str, role: str) -> None:
    async with await driver.connect(**connect_args(role, transport)) as conn:
        assert await conn.fetchval("select current_user") == role
        row = await conn.fetchrow("select $1::int + 1 as n, 'x' as s", 41)
        assert row is not None and row["n"] == 42 and row[1] == "x"
        assert await conn.execute("select 1; select 2") == "SELECT 1"


async def test_pipelined_password_saves_a_round_trip(
    connect_args: ConnectArgs, transport: str
) -> None:
    args = connect_args("clear_user", transport, pipeline_connect="password")
    async with await driver.connect(**args) as conn:
        assert await conn.fetchval("select current_user") == "clear_user"


@pytest.mark.parametrize("role", ["md5_user", "clear_user"])
async def test_default_sslmode_prefers_tls_so_passwords_are_allowed(
    pg: Cluster, proxy: ProxyProcess, transport: str, role: str
) -> None:
    extra: dict[str, Any] = (
        {"ws_proxy": proxy.ws_proxy, "use_secure_websocket": False} if transport == "ws" else {}
    )
    async with await driver.connect(pg.dsn(role), **extra) as conn:
        assert await conn.fetchval("select ssl from pg_stat_ssl where pid = pg_backend_pid()")


async def test_ws_proxy_callable(pg: Cluster, proxy: ProxyProcess) -> None:
    def url(host: str, port: int) -> str:
        return f"127.0.0.1:{proxy.port}/v1?address={host}:{port}"

    args: dict[str, Any] = {"sslmode": "disable", "ws_proxy": url, "use_secure_websocket": False}
    async with await driver.connect(pg.dsn("trust_user"), **args) as conn:
        assert await conn.fetchval("select 1") == 1


async def test_asyncpg_style_ssl_context(pg: Cluster, transport: str, proxy: ProxyProcess) -> None:
    import ssl

    assert pg.certs is not None
    ctx = ssl.create_default_context(cafile=str(pg.certs.ca_cert))
    extra: dict[str, Any] = (
        {"ws_proxy": proxy.ws_proxy, "use_secure_websocket": False} if transport == "ws" else {}
    )
    async with await driver.connect(pg.dsn("tls_user"), ssl=ctx, **extra) as conn:
        assert await conn.fetchval("select ssl from pg_stat_ssl where pid = pg_backend_pid()")
