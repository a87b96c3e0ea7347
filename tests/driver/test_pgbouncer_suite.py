"""The query suite through PgBouncer in transaction pooling mode, over TCP and WebSocket.

Transaction pooling hands each transaction to whichever server backend is free, so anything
that lives in a session (named prepared statements above all) breaks; with
``statement_cache_size=0`` the driver uses only the unnamed statement and must work there.
The functions imported from test_queries are those that keep no state between transactions;
the rest of the suite is repeated here with its state inside one transaction.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

import driver
from driver import errors
from tests.conftest import running_proxy
from tests.driver.test_queries import (  # noqa: F401  (collected again, with this conn)
    test_bad_argument_is_an_interface_error_and_harmless,
    test_fetch_returns_records,
    test_fetchrow_and_fetchval,
    test_transaction_options,
)
from tools.pgbouncer import Bouncer


@pytest.fixture(scope="module")
def bouncer_proxy(pgbouncer: Bouncer) -> Iterator[str]:
    """A proxy allowed to reach only PgBouncer (the session proxy may reach only Postgres)."""
    with running_proxy(rf"127\.0\.0\.1:{pgbouncer.port}") as p:
        yield p.ws_proxy


@pytest.fixture(params=["tcp", "ws"])
def via(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=["trust_user", "scram_user"])
def role(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def conn(
    pgbouncer: Bouncer, bouncer_proxy: str, via: str, role: str
) -> AsyncIterator[driver.Connection]:
    extra: dict[str, Any] = (
        {"ws_proxy": bouncer_proxy, "use_secure_websocket": False} if via == "ws" else {}
    )
    c = await driver.connect(
        pgbouncer.dsn(role), sslmode="disable", statement_cache_size=0, **extra
    )
    try:
        yield c
    finally:
        await c.close()


async def test_parameters_through_unnamed_statements(conn: driver.Connection) -> None:
    values = [
        (1, "int8"),
        (1.5, "float8"),
        ("ünï'\"\\", "text"),
        (b"\x00\xff", "bytea"),
        ([1, None, 3], "int4[]"),
        ({"k": [1, "v"]}, "jsonb"),
        (None, "date"),
    ]
    for value, type_name in values:
        assert await conn.fetchval(f"select $1::{type_name}", value) == value, value
    assert await conn.fetchval("select $1 + 1", 41) == 42
    stmt = await conn.prepare("select $1::int * 2")  # unnamed too: used at once, in order
    assert await stmt.fetchval(21) == 42


async def test_state_inside_one_transaction(conn: driver.Connection, tmp_path: Path) -> None:
    async with conn.transaction():
        await conn.execute("create temp table t_pgb (id int primary key, v text) on commit drop")
        await conn.executemany(
            "insert into t_pgb values ($1, $2)", [(i, f"v{i}") for i in range(20)]
        )
        assert (
            await conn.execute("update t_pgb set v = v || $1 where id < $2", "x", 5) == "UPDATE 5"
        )
        async with conn.transaction():  # a savepoint that commits
            await conn.execute("delete from t_pgb")
        with pytest.raises(errors.UniqueViolation):
            async with conn.transaction():  # a savepoint rolled back by the error
                await conn.execute("insert into t_pgb values (1, 'dup'), (1, 'dup')")
        assert await conn.fetchval("select count(*) from t_pgb") == 0
        await conn.copy_records_to_table("t_pgb", records=[(100, "a"), (101, None)])
        out = tmp_path / "out.csv"
        await conn.copy_from_query("select * from t_pgb order by id", output=out, format="csv")
        assert out.read_text() == "100,a\n101,\n"


async def test_no_session_state_is_needed_under_contention(
    pgbouncer: Bouncer, bouncer_proxy: str, via: str
) -> None:
    """Twelve clients over PgBouncer's five backends: with named statements, a client would
    soon run on a backend that never saw its statement ("prepared statement does not exist")."""
    extra: dict[str, Any] = (
        {"ws_proxy": bouncer_proxy, "use_secure_websocket": False} if via == "ws" else {}
    )

    async def client(n: int) -> list[int]:
        c = await driver.connect(
            pgbouncer.dsn("scram_user"),
            sslmode="disable",
            statement_cache_size=0,
            application_name=_CONTENDERS,
            **extra,
        )
        try:
            got = []
            for i in range(15):
                got.append(await c.fetchval("select $1::int + $2::int", n, i))
                got.append(await c.fetchval("select $1::int * 2 from pg_sleep(0.001)", i))
            return got
        finally:
            await c.close()

    results = await asyncio.gather(*(client(n) for n in range(12)))
    for n, got in enumerate(results):
        assert got == [v for i in range(15) for v in (n + i, i * 2)]
    backends = await _backend_count(pgbouncer)
    assert 1 <= backends <= 5  # the clients really shared PgBouncer's pool


# PgBouncer passes a client's application_name on to the server connection it lends: the
# backends these clients ran on are told apart from scram_user connections of other tests
# (a backend another test just closed may still be listed for a moment).
_CONTENDERS = "pgb-contention"


async def _backend_count(pgbouncer: Bouncer) -> int:
    c = await driver.connect(pgbouncer.dsn("trust_user"), sslmode="disable", statement_cache_size=0)
    try:
        n = await c.fetchval(
            "select count(*) from pg_stat_activity where usename = 'scram_user'"
            " and datname = current_database() and application_name = $1",
            _CONTENDERS,
        )
        return int(n)
    finally:
        await c.close()
