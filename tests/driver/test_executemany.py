"""executemany() when a row fails on the client, side by side with asyncpg (issue 12)."""

from __future__ import annotations

from collections.abc import Iterator

import asyncpg
import pytest

import driver
from tests.driver.conftest import Connect, ConnectArgs


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


@pytest.mark.parametrize("mode", ["tcp", "ws"])
async def test_the_rollback_after_a_client_failure_is_silent(
    mode: str, connect_args: ConnectArgs
) -> None:
    """Outside a transaction block the rows already sent are rolled back by a ROLLBACK of
    the driver's own: its "no transaction in progress" warning reaches no listener (asyncpg
    passes it on; it says nothing about the caller's work)."""
    conn = await driver.connect(**connect_args("trust_user", mode))
    heard: list[object] = []
    conn.add_log_listener(lambda _conn, msg: heard.append(msg))
    try:
        await conn.execute("create temp table t_many (a text, b int primary key)")
        with pytest.raises(ZeroDivisionError):
            await conn.executemany("insert into t_many values ($1, $2)", rows_failing_at_zero())
        assert await conn.fetchval("select count(*) from t_many") == 0
        assert heard == []
    finally:
        await conn.close()


@pytest.mark.parametrize("mode", ["tcp", "ws"])
async def test_many_flights_all_arrive(mode: str, connect_args: ConnectArgs) -> None:
    """Rows sent in many flights (each a few hundred rows) all arrive, in order."""
    conn = await driver.connect(**connect_args("trust_user", mode))
    try:
        await conn.execute("create temp table t_many (a text, b int primary key)")
        rows = [(f"row {i}" * 20, i) for i in range(5000)]
        await conn.executemany("insert into t_many values ($1, $2)", rows)
        got = await conn.fetch("select a, b from t_many order by b")
        assert [tuple(r) for r in got] == rows
    finally:
        await conn.close()


@pytest.mark.parametrize("mode", ["tcp", "ws"])
async def test_a_timeout_between_flights_leaves_a_usable_connection(
    mode: str, connect_args: ConnectArgs
) -> None:
    """Interrupted between two flights (its Sync not sent yet), executemany() still ends
    the implicit transaction for the background drain, rolled back: no row stays."""
    conn = await driver.connect(**connect_args("trust_user", mode))
    try:
        await conn.execute("create temp table t_many (a text, b int primary key)")
        rows = [("x" * 100, i) for i in range(200_000)]  # ~170 flights, seconds of work
        with pytest.raises(TimeoutError):
            await conn.executemany("insert into t_many values ($1, $2)", rows, timeout=0.05)
        assert await conn.fetchval("select count(*) from t_many") == 0
        assert not conn.is_in_transaction()
    finally:
        await conn.close()


async def test_a_server_error_in_an_early_flight_stops_the_sending(connect: Connect) -> None:
    """A duplicate key in the first flight of 25: the error, and nothing inserted; the later
    flights, which the server would skip, are not waited for."""
    conn = await connect()
    try:
        await conn.execute("create temp table t_many (a text, b int primary key)")
        rows = [("a" * 32768, 0 if i < 2 else i) for i in range(100)]
        with pytest.raises(Exception, match="duplicate key") as caught:
            await conn.executemany("insert into t_many values ($1, $2)", rows)
        assert type(caught.value).__name__ == "UniqueViolationError"
        assert await conn.fetchval("select count(*) from t_many") == 0
    finally:
        await conn.close()
