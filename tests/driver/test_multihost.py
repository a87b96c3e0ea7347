"""Several hosts in one DSN, target_session_attrs and load_balance_hosts, as libpq 16 and
asyncpg: against the real cluster and a real streaming standby of it, over TCP and through
the WebSocket proxy, side by side with asyncpg where it has the feature."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import quote

import asyncpg
import pytest

import driver
from tools.pgcluster import DBNAME, ROLES, Cluster, destroy, refused_port, start_replica

ROLE = "scram_user"
PASSWORD = ROLES[ROLE][0] or ""


@pytest.fixture(scope="module")
def standby(pg: Cluster) -> Iterator[Cluster]:
    replica = start_replica(pg)
    try:
        yield replica
    finally:
        destroy(replica)


@pytest.fixture
def dead_port() -> Iterator[int]:
    """A loopback port nobody listens on (connection refused)."""
    with refused_port() as port:
        yield port


def dsn(ports: list[int], **query: str) -> str:
    hosts = ",".join(f"127.0.0.1:{p}" for p in ports)
    q = "&".join(f"{k}={v}" for k, v in query.items())
    return f"postgresql://{ROLE}:{quote(PASSWORD, safe='')}@{hosts}/{DBNAME}" + (
        f"?{q}" if q else ""
    )


@pytest.fixture
def via(transport: str, open_proxy: str) -> dict[str, Any]:
    """Keyword arguments for the transport: the WebSocket proxy here may reach any port."""
    args: dict[str, Any] = {"sslmode": "disable", "allow_unencrypted_password": True}
    if transport == "ws":
        args.update(ws_proxy=open_proxy, use_secure_websocket=False)
    return args


async def port_of(conn: Any) -> int:
    return int(await conn.fetchval("select current_setting('port')"))


async def test_roles_pick_the_right_server(
    pg: Cluster, standby: Cluster, dead_port: int, via: dict[str, Any]
) -> None:
    both = [dead_port, standby.port, pg.port]
    expect = {
        "any": standby.port,  # the first that answers
        "primary": pg.port,
        "read-write": pg.port,
        "standby": standby.port,
        "read-only": standby.port,
        "prefer-standby": standby.port,
    }
    for attrs, port in expect.items():
        conn = await driver.connect(dsn(both, target_session_attrs=attrs), **via)
        try:
            assert await port_of(conn) == port, attrs
            assert await conn.fetchval("select pg_is_in_recovery()") is (port == standby.port)
            assert conn.get_server_pid() is not None
        finally:
            await conn.close()
    # prefer-standby with no standby up: the first server that answers
    conn = await driver.connect(
        dsn([dead_port, pg.port], target_session_attrs="prefer-standby"), **via
    )
    assert await port_of(conn) == pg.port
    await conn.close()


async def test_read_only_primary_counts_as_read_only(
    pg: Cluster, standby: Cluster, via: dict[str, Any]
) -> None:
    """libpq: read-write needs default_transaction_read_only off as well as no recovery."""
    ro = {"default_transaction_read_only": "on"}
    conn = await driver.connect(
        dsn([pg.port], target_session_attrs="read-only"), server_settings=ro, **via
    )
    assert await port_of(conn) == pg.port
    await conn.close()
    with pytest.raises(driver.errors.TargetServerAttributeNotMatched) as err:
        await driver.connect(
            dsn([pg.port, standby.port], target_session_attrs="read-write"),
            server_settings=ro,
            **via,
        )
    assert "read-only primary" in str(err.value) and "is a standby" in str(err.value)
    # primary asks only "not in recovery"
    conn = await driver.connect(
        dsn([standby.port, pg.port], target_session_attrs="primary"), server_settings=ro, **via
    )
    assert await port_of(conn) == pg.port
    await conn.close()


async def test_no_host_fits_names_each_reason(
    pg: Cluster, standby: Cluster, dead_port: int, via: dict[str, Any]
) -> None:
    with pytest.raises(driver.errors.TargetServerAttributeNotMatched) as err:
        await driver.connect(dsn([dead_port, standby.port], target_session_attrs="primary"), **via)
    text = str(err.value)
    assert f"127.0.0.1:{dead_port}" in text and f"127.0.0.1:{standby.port}: is a standby" in text
    assert "'primary'" in text

    with refused_port() as other, pytest.raises(OSError) as lost:  # also driver.Error
        await driver.connect(dsn([dead_port, other]), **via)
    assert isinstance(lost.value, driver.Error)
    assert f"127.0.0.1:{dead_port}" in str(lost.value) and f"127.0.0.1:{other}" in str(lost.value)
    # a refused password is the server's answer: no other host is tried, as asyncpg
    with pytest.raises(driver.errors.InvalidPasswordError):
        await driver.connect(dsn([pg.port, standby.port]), **{**via, "password": "wrong"})


async def test_host_and_port_lists_and_env(
    pg: Cluster, standby: Cluster, dead_port: int, via: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    conn = await driver.connect(
        host=["127.0.0.1", "127.0.0.1", "127.0.0.1"],
        port=[dead_port, pg.port, standby.port],
        user=ROLE,
        password=PASSWORD,
        database=DBNAME,
        target_session_attrs="standby",
        **via,
    )
    assert await port_of(conn) == standby.port
    await conn.close()

    monkeypatch.setenv("PGTARGETSESSIONATTRS", "standby")
    conn = await driver.connect(dsn([pg.port, standby.port]), **via)
    assert await port_of(conn) == standby.port
    await conn.close()
    # an explicit argument wins over the environment
    conn = await driver.connect(dsn([pg.port, standby.port]), target_session_attrs="any", **via)
    assert await port_of(conn) == pg.port
    await conn.close()
    monkeypatch.setenv("PGTARGETSESSIONATTRS", "master")
    with pytest.raises(ValueError, match="target_session_attrs"):
        await driver.connect(dsn([pg.port]), **via)


async def test_load_balance_hosts(pg: Cluster, standby: Cluster, via: dict[str, Any]) -> None:
    async def ports(**query: str) -> set[int]:
        seen = set()
        for _ in range(16):  # random: both show up unless 16 coin flips agree (p = 2**-15)
            conn = await driver.connect(dsn([pg.port, standby.port], **query), **via)
            seen.add(await port_of(conn))
            await conn.close()
        return seen

    assert await ports(load_balance_hosts="random") == {pg.port, standby.port}
    assert await ports(load_balance_hosts="disable") == {pg.port}
    with pytest.raises(driver.InterfaceError, match="load_balance_hosts"):
        await driver.connect(dsn([pg.port], load_balance_hosts="round-robin"), **via)


@pytest.fixture
async def silent_port() -> AsyncIterator[int]:
    """A server that accepts connections and never says a word."""
    held: list[asyncio.StreamWriter] = []

    async def hold(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0, family=socket.AF_INET)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        for w in held:
            w.close()
        server.close()


async def test_one_deadline_covers_every_host(
    pg: Cluster, silent_port: int, via: dict[str, Any]
) -> None:
    loop = asyncio.get_running_loop()
    start = loop.time()
    with pytest.raises(TimeoutError, match=f"127.0.0.1:{silent_port}, 127.0.0.1:{pg.port}"):
        await driver.connect(dsn([silent_port, pg.port]), timeout=0.5, **via)
    assert loop.time() - start < 5


async def test_pool_lends_only_the_role_asked_for(
    pg: Cluster, standby: Cluster, dead_port: int, via: dict[str, Any]
) -> None:
    url = dsn([dead_port, pg.port, standby.port], target_session_attrs="standby")
    async with driver.create_pool(url, min_size=2, max_size=2, **via) as pool:
        assert {await pool.fetchval("select current_setting('port')::int") for _ in range(4)} == {
            standby.port
        }
        assert await pool.fetchval("select pg_is_in_recovery()") is True


@pytest.mark.parametrize("transport", ["tcp"])
async def test_same_choice_as_asyncpg(
    pg: Cluster, standby: Cluster, dead_port: int, transport: str
) -> None:
    ports = [dead_port, pg.port, standby.port]
    for attrs in ("any", "primary", "standby", "prefer-standby", "read-write", "read-only"):
        url = dsn(ports, target_session_attrs=attrs)
        ours = await driver.connect(url, sslmode="disable", allow_unencrypted_password=True)
        theirs = await asyncpg.connect(url, ssl=False)
        try:
            assert await port_of(ours) == await port_of(theirs), attrs
        finally:
            await ours.close()
            await theirs.close()
    url = dsn([standby.port, standby.port], target_session_attrs="primary")
    with pytest.raises(asyncpg.TargetServerAttributeNotMatched):
        await asyncpg.connect(url, ssl=False)
    with pytest.raises(driver.exceptions.TargetServerAttributeNotMatched):
        await driver.connect(url, sslmode="disable", allow_unencrypted_password=True)
    # Where one host is down and the other has the wrong role, asyncpg raises the down
    # host's OSError and says nothing of the other; we raise TargetServerAttributeNotMatched
    # naming both (test_no_host_fits_names_each_reason).
    url = dsn([dead_port, standby.port], target_session_attrs="primary")
    with pytest.raises(OSError):
        await asyncpg.connect(url, ssl=False)
