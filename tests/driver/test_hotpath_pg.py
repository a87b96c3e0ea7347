"""The per-query fast paths against the real server, over TCP and the WebSocket, with the
statement cache on (named statements, Bind + Execute + Sync from cached parts) and off (the
unnamed statement parsed with every execution)."""

from __future__ import annotations

import pytest

import driver
from tests.driver.conftest import ConnectArgs

pytestmark = pytest.mark.parametrize("cache", [100, 0], ids=["cached", "unnamed"])

VALUES = "select $1::text as t, $2::int4 as i, $3::float8 as f, length($1::text) as n"


async def _connect(connect_args: ConnectArgs, transport: str, cache: int) -> driver.Connection:
    return await driver.connect(**connect_args("trust_user", transport, statement_cache_size=cache))


async def test_one_statement_with_nulls_and_other_lengths(
    connect_args: ConnectArgs, transport: str, cache: int
) -> None:
    async with await _connect(connect_args, transport, cache) as c:
        for args in [
            ("a", 1, 1.5),
            (None, None, None),
            ("é" * 3000, -(2**31), -0.0),
            ("", 0, 1e300),
            ("x" * 70_000, 2**31 - 1, 5e-324),
            (None, 7, float("inf")),
        ]:
            row = await c.fetchrow(VALUES, *args)
            assert row is not None
            assert tuple(row) == (*args, None if args[0] is None else len(args[0]))
            assert row["t"] == args[0]
            assert await c.fetch(VALUES, *args) == [row]
            assert await c.execute(VALUES, *args) == "SELECT 1"


async def test_after_a_re_prepare_the_new_shape_is_used(
    connect_args: ConnectArgs, transport: str, cache: int
) -> None:
    async with await _connect(connect_args, transport, cache) as c:
        await c.execute("create temp table t_hot (a int, b text)")
        await c.execute("insert into t_hot values (1, 'one'), (2, null)")
        query = "select * from t_hot where a >= $1 order by a"
        assert [tuple(r) for r in await c.fetch(query, 1)] == [(1, "one"), (2, None)]
        await c.execute("alter table t_hot add column c float8 default 0.5")
        rows = await c.fetch(query, 2)
        assert [tuple(r) for r in rows] == [(2, None, 0.5)]
        assert list(rows[0].keys()) == ["a", "b", "c"]


async def test_results_larger_than_one_read(
    connect_args: ConnectArgs, transport: str, cache: int
) -> None:
    async with await _connect(connect_args, transport, cache) as c:
        query = (
            "select i, repeat('x', i % 50), case when i % 3 = 0 then null else i * 0.5 end "
            "from generate_series(1, $1::int) i"
        )
        rows = await c.fetch(query, 20_000)
        assert len(rows) == 20_000
        assert tuple(rows[0]) == (1, "x", 0.5)
        assert tuple(rows[2]) == (3, "xxx", None)
        assert tuple(rows[-1]) == (20_000, "", 10_000)
        assert await c.fetchval("select count(*) from generate_series(1, $1::int)", 3) == 3


async def test_notices_between_rows_and_errors_after_rows(
    connect_args: ConnectArgs, transport: str, cache: int
) -> None:
    async with await _connect(connect_args, transport, cache) as c:
        await c.execute(
            "create function pg_temp.noisy(i int) returns int language plpgsql as $$ "
            "begin raise notice 'row %', i; return i; end $$"
        )
        heard: list[str] = []
        c.add_log_listener(lambda _conn, msg: heard.append(msg.message))
        rows = await c.fetch("select pg_temp.noisy(i) from generate_series(1, $1::int) i", 5)
        assert [r[0] for r in rows] == [1, 2, 3, 4, 5]
        assert heard == [f"row {i}" for i in range(1, 6)]
        with pytest.raises(driver.PostgresError):
            await c.fetch("select 10 / (3 - i) from generate_series(1, $1::int) i", 5)
        assert await c.fetchval("select $1::int + 1", 1) == 2  # still usable
        async with c.transaction():
            assert await c.fetchval("select $1::text", "in tx") == "in tx"
            assert c.is_in_transaction()
        assert not c.is_in_transaction()
