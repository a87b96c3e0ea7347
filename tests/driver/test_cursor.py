"""Cursors over TCP and WebSocket: portals read in batches, asyncpg's rules and errors, and
the same rows as asyncpg on the same queries."""

from __future__ import annotations

import asyncpg
import pytest

import driver
from driver.errors import InterfaceError, NoActiveSQLTransactionError
from tests.driver.conftest import ConnectArgs

SERIES = "SELECT generate_series(0, 20) AS n"


async def _portals(conn: driver.Connection) -> list[str]:
    return [
        r[0]
        for r in await conn.fetch("SELECT name FROM pg_cursors WHERE name <> $$$$ ORDER BY name")
    ]


async def test_iterating_reads_every_row_for_any_prefetch(dconn: driver.Connection) -> None:
    expected = [(i,) for i in range(21)]
    for prefetch in (1, 2, 5, 20, 21, 22, 50):
        async with dconn.transaction():
            rows = [r async for r in dconn.cursor(SERIES, prefetch=prefetch)]
            # the portal is closed as soon as the rows ran out, not at COMMIT
            assert await _portals(dconn) == []
        assert rows == expected, prefetch
        assert rows[3]["n"] == 3


async def test_prepared_cursor_with_arguments_and_reuse(dconn: driver.Connection) -> None:
    st = await dconn.prepare("SELECT generate_series($1::int, $2::int)")
    async with dconn.transaction():
        assert [r[0] async for r in st.cursor(3, 7, prefetch=2)] == [3, 4, 5, 6, 7]
        assert [r[0] async for r in st.cursor(1, 2)] == [1, 2]
        cur = await st.cursor(10, 12)
        assert await cur.fetch(5) == [(10,), (11,), (12,)]


async def test_awaitable_cursor_fetch_fetchrow_forward(dconn: driver.Connection) -> None:
    async with dconn.transaction():
        cur = await dconn.cursor(SERIES)
        with pytest.raises(InterfaceError, match="greater than zero"):
            await cur.fetch(0)
        assert await cur.fetch(2) == [(0,), (1,)]
        assert await cur.fetchrow() == (2,)
        assert "exhausted" not in repr(cur) and '"SELECT generate' in repr(cur)
        assert await cur.forward(5) == 5
        assert await cur.fetchrow() == (8,)
        assert await cur.fetch(100) == [(i,) for i in range(9, 21)]
        assert await cur.fetchrow() is None
        assert await cur.fetch(5) == []
        assert " exhausted " in repr(cur)
        # the awaitable cursor's portal stays open until the transaction ends
        assert len(await _portals(dconn)) == 1
    assert await _portals(dconn) == []


async def test_forward_past_the_end_counts_what_was_skipped(dconn: driver.Connection) -> None:
    async with dconn.transaction():
        cur = await dconn.cursor("SELECT generate_series(1, 10)")
        assert await cur.forward(7) == 7
        assert await cur.forward(7) == 3
        assert await cur.fetchrow() is None


async def test_outside_a_transaction_refused_as_asyncpg(
    dconn: driver.Connection, apg: asyncpg.Connection
) -> None:
    for conn, error in ((dconn, NoActiveSQLTransactionError),
                        (apg, asyncpg.NoActiveSQLTransactionError)):  # fmt: skip
        with pytest.raises(error, match="cursor cannot be created outside of a transaction"):
            await conn.cursor(SERIES)
        with pytest.raises(error, match="cursor cannot be created outside of a transaction"):
            async for _ in conn.cursor(SERIES):
                pass
        st = await conn.prepare(SERIES)
        with pytest.raises(error, match="cursor cannot be created outside of a transaction"):
            await st.cursor()
    assert await dconn.fetchval("SELECT 1") == 1  # still usable


async def test_argument_errors_as_asyncpg(dconn: driver.Connection) -> None:
    async with dconn.transaction():
        with pytest.raises(InterfaceError, match="prefetch argument can only"):
            await dconn.cursor(SERIES, prefetch=10)
        for prefetch in (-1, 0):
            with pytest.raises(InterfaceError, match="must be greater than zero"):
                async for _ in dconn.cursor(SERIES, prefetch=prefetch):
                    pass
        st = await dconn.prepare(SERIES)
        await st.close()
        with pytest.raises(InterfaceError, match="statement is closed"):
            st.cursor()


async def test_a_server_error_leaves_the_transaction_failed_not_the_connection(
    dconn: driver.Connection,
) -> None:
    tr = dconn.transaction()
    await tr.start()
    with pytest.raises(driver.exceptions.DivisionByZeroError):
        async for _ in dconn.cursor("SELECT 1 / (5 - generate_series(1, 10))", prefetch=2):
            pass
    await tr.rollback()
    assert await dconn.fetchval("SELECT 2") == 2


async def test_unnamed_statement_is_parsed_again_for_the_cursor(
    connect_args: ConnectArgs, transport: str
) -> None:
    conn = await driver.connect(**connect_args("trust_user", transport, statement_cache_size=0))
    try:
        async with conn.transaction():
            st = await conn.prepare("SELECT $1::int, $2::int, 'foo'::text")
            assert st.get_name() == ""
            await conn.fetchval("SELECT 42")  # replaces the unnamed statement on the server
            cur = await st.cursor(1, 2)
            assert await cur.fetch(1) == [(1, 2, "foo")]
            rows = [r async for r in conn.cursor("SELECT generate_series(1, 3)", prefetch=2)]
            assert rows == [(1,), (2,), (3,)]
    finally:
        await conn.close()


async def test_same_rows_as_asyncpg(dconn: driver.Connection, apg: asyncpg.Connection) -> None:
    sql = "SELECT i, md5(i::text) AS h FROM generate_series(1, 1000) i WHERE i % $1 = 0"
    mine: list[tuple[object, ...]] = []
    theirs: list[tuple[object, ...]] = []
    async with dconn.transaction():
        mine = [tuple(r) async for r in dconn.cursor(sql, 3, prefetch=77)]
    async with apg.transaction():
        theirs = [tuple(r) async for r in apg.cursor(sql, 3, prefetch=77)]
    assert mine == theirs and len(mine) == 333


async def test_cursor_record_class(dconn: driver.Connection) -> None:
    class Mine(driver.Record):
        pass

    async with dconn.transaction():
        cur = await dconn.cursor("SELECT 1 AS a", record_class=Mine)
        row = await cur.fetchrow()
        assert isinstance(row, Mine) and repr(row) == "<Mine a=1>"
        rows = [r async for r in dconn.cursor("SELECT 1 AS a", record_class=Mine)]
        assert isinstance(rows[0], Mine)
        st = await dconn.prepare("SELECT 2 AS b", record_class=Mine)
        assert isinstance(await (await st.cursor()).fetchrow(), Mine)
