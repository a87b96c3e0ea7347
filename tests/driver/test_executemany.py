"""executemany() when a row fails on the client, side by side with asyncpg (issue 12)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import asyncpg
import pytest

import driver
from tests.driver.conftest import ConnectArgs
from tools.pgcluster import Cluster

Connect = Callable[..., Awaitable[Any]]


@pytest.fixture(params=["tcp", "ws", "asyncpg"])
def connect(request: pytest.FixtureRequest, connect_args: ConnectArgs, pg: Cluster) -> Connect:
    mode = str(request.param)
    if mode == "asyncpg":
        return lambda **kw: asyncpg.connect(pg.dsn("trust_user"), ssl=False, **kw)
    return lambda **kw: driver.connect(**connect_args("trust_user", mode, **kw))


def rows_failing_at_zero() -> Iterator[tuple[str, int]]:
    """Eleven 32 KiB rows; the last raises ZeroDivisionError while it is produced."""
    for y in range(10, -1, -1):
        yield ("a" * 32768, y + y // y)


async def test_client_failure_inside_a_transaction_keeps_the_sent_rows(connect: Connect) -> None:
    conn = await connect()
    try:
        await conn.execute("create temp table t_many (a text, b int primary key)")
        tx = conn.transaction()
        await tx.start()
        with pytest.raises(ZeroDivisionError):
            await conn.executemany("insert into t_many values ($1, $2)", rows_failing_at_zero())
        got = [r[0] for r in await conn.fetch("select b from t_many order by b desc")]
        assert got == [y + 1 for y in range(10, 2, -1)]  # two flights of four rows, as asyncpg
        await tx.rollback()
        assert await conn.fetchval("select count(*) from t_many") == 0
    finally:
        await conn.close()


async def test_client_failure_outside_a_transaction_writes_nothing(connect: Connect) -> None:
    conn = await connect()
    try:
        await conn.execute("create temp table t_many (a text, b int primary key)")
        with pytest.raises(ZeroDivisionError):
            await conn.executemany("insert into t_many values ($1, $2)", rows_failing_at_zero())
        assert await conn.fetchval("select count(*) from t_many") == 0
        assert await conn.fetchval("select 1") == 1  # and the connection is fine
    finally:
        await conn.close()


async def test_server_failure_wins_over_a_later_client_failure(connect: Connect) -> None:
    conn = await connect()
    try:
        await conn.execute("create temp table t_many (a text, b int primary key)")
        tx = conn.transaction()
        await tx.start()

        def rows() -> Iterator[tuple[str, int]]:
            for y in range(8, -1, -1):
                yield ("a" * 32768, 0 if y < 6 else 1 // y)  # duplicate key, then 1 // 0

        unique = (
            asyncpg.UniqueViolationError
            if isinstance(conn, asyncpg.Connection)
            else driver.exceptions.UniqueViolationError
        )
        with pytest.raises(unique):
            await conn.executemany("insert into t_many values ($1, $2)", rows())
        await tx.rollback()
    finally:
        await conn.close()
