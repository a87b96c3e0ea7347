"""The query API against the real cluster, over TCP and over WebSocket through the proxy."""

from __future__ import annotations

import asyncio
import datetime as dt
import decimal
import io
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

import driver
from driver import errors


async def test_fetch_returns_records(conn: driver.Connection) -> None:
    rows = await conn.fetch("select g as n, g::text as s from generate_series(1, 3) g")
    assert [tuple(r) for r in rows] == [(1, "1"), (2, "2"), (3, "3")]
    assert rows[0]["s"] == "1" and dict(rows[2]) == {"n": 3, "s": "3"}
    assert repr(rows[0]) == "<Record n=1 s='1'>"


async def test_fetchrow_and_fetchval(conn: driver.Connection) -> None:
    assert await conn.fetchrow("select 1 where false") is None
    row = await conn.fetchrow("select 1 as a, 2 as b from generate_series(1, 5)")
    assert row is not None and row == (1, 2)
    assert await conn.fetchval("select 1, 'two'", column=1) == "two"
    assert await conn.fetchval("select null") is None


async def test_parameters_round_trip_common_types(conn: driver.Connection) -> None:
    values = [
        (1, "int8"), (-(2**62), "int8"), (1.5, "float8"),
        (decimal.Decimal("12345678901234567890.123"), "numeric"), ("ünï'\"\\", "text"),
        (b"\x00\xff", "bytea"), (True, "bool"), (None, "int4"), (dt.date(2024, 2, 29), "date"),
        (dt.datetime(2024, 1, 2, 3, 4, 5, 678901), "timestamp"),
        (dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC), "timestamptz"),
        (dt.timedelta(days=3, seconds=7), "interval"), (uuid.UUID(int=7), "uuid"),
        ([1, None, 3], "int4[]"), ({"k": [1, "v"]}, "jsonb"),
    ]  # fmt: skip
    for value, type_name in values:
        assert await conn.fetchval(f"select $1::{type_name}", value) == value, value
    # Untyped: the server infers, as with asyncpg.
    assert await conn.fetchval("select $1 + 1", 41) == 42
    assert await conn.fetchval("select pg_backend_pid() = $1", conn.get_server_pid()) is True
    assert await conn.fetchval("select substr('abcdef', $1, $2)", 2, 3) == "bcd"
    assert await conn.fetchval("select round($1, 1)", 2.25) == decimal.Decimal("2.3")
    assert await conn.fetchval("select $1", "text as is") == "text as is"


async def test_execute_tags(conn: driver.Connection) -> None:
    await conn.execute("create temp table t_tags (id int primary key, v text)")
    assert await conn.execute("insert into t_tags values (1, 'a')") == "INSERT 0 1"
    assert await conn.execute("insert into t_tags values ($1, $2)", 2, "b") == "INSERT 0 1"
    assert await conn.execute("update t_tags set v = v || 'x'") == "UPDATE 2"
    tag = await conn.execute("insert into t_tags values (3, 'c'); delete from t_tags where id = 3")
    assert tag == "DELETE 1"


async def test_executemany_pipelines_all_rows(conn: driver.Connection) -> None:
    await conn.execute("create temp table t_many (id int, v text)")
    await conn.executemany("insert into t_many values ($1, $2)", [(i, f"v{i}") for i in range(50)])
    assert await conn.fetchval("select count(*) from t_many") == 50
    await conn.executemany("insert into t_many values ($1, $2)", [])
    with pytest.raises(errors.NotNullViolation):
        await conn.execute("alter table t_many alter id set not null")
        await conn.executemany("insert into t_many values ($1, $2)", [(1, "a"), (None, "b")])
    assert await conn.fetchval("select count(*) from t_many") == 50  # all or nothing


async def test_prepared_statement(conn: driver.Connection) -> None:
    stmt = await conn.prepare("select $1::int * 2 as doubled, $2::text as t")
    assert [t.oid for t in stmt.get_parameters()] == [23, 25]
    assert [a.name for a in stmt.get_attributes()] == ["doubled", "t"]
    assert await stmt.fetchval(21, "x") == 42
    row = await stmt.fetchrow(1, "y")
    assert row is not None and row["t"] == "y"
    assert len(await stmt.fetch(2, "z")) == 1
    await stmt.close()
    assert await conn.fetchval("select 1") == 1  # the queued Close went out with this


async def test_statement_cache_is_reused_and_bounded(connect_args: object, transport: str) -> None:
    args = connect_args("trust_user", transport, statement_cache_size=3)  # type: ignore[operator]
    async with await driver.connect(**args) as c:
        for i in range(10):
            assert await c.fetchval(f"select {i} + $1::int", 1) == i + 1
        assert len(c._session.cache) == 3
        count = "select count(*) from pg_prepared_statements"
        assert await c.fetchval(count) == 4  # 3 cached + this one, before its eviction Close
        assert await c.fetchval(count) == 3  # evicted statements were closed on the server


async def test_stale_cached_plan_is_reprepared_once(conn: driver.Connection) -> None:
    await conn.execute("create temp table t_stale (a int)")
    await conn.execute("insert into t_stale values (1)")
    assert await conn.fetchval("select a from t_stale") == 1
    row = await conn.fetchrow("select * from t_stale where a = $1", 1)
    assert row is not None and tuple(row) == (1,)
    await conn.execute("alter table t_stale alter a type text")
    assert await conn.fetchval("select a from t_stale") == "1"  # new result type, re-prepared
    await conn.execute("alter table t_stale alter a type int using a::int, add column b int")
    row = await conn.fetchrow("select * from t_stale where a = $1", 1)
    assert row is not None and tuple(row) == (1, None)
    async with conn.transaction():
        await conn.execute("alter table t_stale add column c int")
        with pytest.raises(errors.InvalidCachedStatement):
            await conn.fetchrow("select * from t_stale where a = $1", 1)


async def test_cached_statement_survives_discard_all(conn: driver.Connection) -> None:
    assert await conn.fetchval("select $1::int", 5) == 5
    await conn.execute("deallocate all")
    assert await conn.fetchval("select $1::int", 6) == 6


async def test_postgres_errors_are_typed_with_fields(conn: driver.Connection) -> None:
    with pytest.raises(errors.UndefinedTable) as info:
        await conn.fetch("select * from no_such_table")
    exc = info.value
    assert exc.sqlstate == "42P01" and exc.severity == "ERROR" and exc.position == "15"
    assert "no_such_table" in exc.message
    with pytest.raises(errors.PostgresSyntaxError):
        await conn.execute("selec 1")
    with pytest.raises(errors.UndefinedColumn):
        await conn.fetch("select nope")
    with pytest.raises(errors.DivisionByZero):
        await conn.fetchval("select 1 / $1::int", 0)
    await conn.execute("create temp table t_uni (id int constraint t_uni_pk primary key)")
    await conn.execute("insert into t_uni values (1)")
    with pytest.raises(errors.UniqueViolation) as uv:
        await conn.execute("insert into t_uni values ($1)", 1)
    assert uv.value.constraint_name == "t_uni_pk" and uv.value.table_name == "t_uni"
    assert uv.value.detail == "Key (id)=(1) already exists."
    with pytest.raises(errors.QueryCanceled):
        await conn.execute("set statement_timeout = 50; select pg_sleep(5)")
    await conn.execute("reset statement_timeout")
    assert await conn.fetchval("select 1") == 1  # the connection is still good


async def test_bad_argument_is_an_interface_error_and_harmless(conn: driver.Connection) -> None:
    with pytest.raises(driver.InterfaceError, match=r"\$1"):
        await conn.fetchval("select $1", object())
    assert await conn.fetchval("select 2") == 2


async def test_transactions_commit_rollback_and_savepoints(conn: driver.Connection) -> None:
    await conn.execute("create temp table t_tx (v int)")
    async with conn.transaction():
        await conn.execute("insert into t_tx values (1)")
        assert conn.is_in_transaction()
    assert not conn.is_in_transaction()
    with pytest.raises(RuntimeError):
        async with conn.transaction():
            await conn.execute("insert into t_tx values (2)")
            raise RuntimeError("boom")
    async with conn.transaction():
        await conn.execute("insert into t_tx values (3)")
        with pytest.raises(errors.UniqueViolation):
            async with conn.transaction():
                await conn.execute("insert into t_tx values (4)")
                await conn.execute("create unique index on t_tx (v)")
                await conn.execute("insert into t_tx values (4)")
        async with conn.transaction():
            await conn.execute("insert into t_tx values (5)")
    assert [r[0] for r in await conn.fetch("select v from t_tx order by v")] == [1, 3, 5]


async def test_transaction_options(conn: driver.Connection) -> None:
    async with conn.transaction(isolation="serializable", readonly=True, deferrable=True):
        assert await conn.fetchval("show transaction_isolation") == "serializable"
        assert await conn.fetchval("show transaction_read_only") == "on"
        with pytest.raises(errors.PostgresError, match="read-only"):
            await conn.execute("create temp table t_ro (a int)")
    with pytest.raises(driver.InterfaceError):
        conn.transaction(isolation="bogus")


async def test_copy_round_trip(conn: driver.Connection, tmp_path: Path) -> None:
    await conn.execute("create temp table t_copy (id int, name text, at date)")
    records = [(1, "tab\there", dt.date(2020, 1, 1)), (2, "back\\slash\nnl", None)]
    assert await conn.copy_records_to_table("t_copy", records=records) == "COPY 2"
    csv = tmp_path / "in.csv"
    csv.write_bytes(b"3,three,2021-02-03\n4,four,\n")
    tag = await conn.copy_to_table("t_copy", source=csv, format="csv")
    assert tag == "COPY 2"

    async def chunks() -> AsyncIterator[bytes]:
        yield b"5\tfi"
        yield b"ve\t\\N\n"

    assert await conn.copy_to_table("t_copy", source=chunks()) == "COPY 1"
    rows = await conn.fetch("select * from t_copy order by id")
    assert [tuple(r) for r in rows[:2]] == records
    assert len(rows) == 5

    out = io.BytesIO()
    assert await conn.copy_from_table("t_copy", output=out, format="csv") == "COPY 5"
    assert out.getvalue().splitlines()[0] == b"1,tab\there,2020-01-01"
    got: list[bytes] = []

    async def sink(data: bytes) -> None:
        got.append(data)

    tag = await conn.copy_from_query("select id from t_copy where id > $1", 3, output=sink)
    assert tag == "COPY 2" and b"".join(got) == b"4\n5\n"
    path = tmp_path / "out.txt"
    await conn.copy_from_table("t_copy", output=path, columns=["id"])
    assert path.read_bytes().split() == [b"1", b"2", b"3", b"4", b"5"]


async def test_copy_errors_leave_the_connection_usable(conn: driver.Connection) -> None:
    await conn.execute("create temp table t_copy_err (id int)")
    with pytest.raises(errors.InvalidTextRepresentation):
        await conn.copy_to_table("t_copy_err", source=[b"1\n", b"x\n", b"3\n"])

    async def broken() -> AsyncIterator[bytes]:
        yield b"1\n"
        raise ValueError("source failed")

    with pytest.raises(ValueError, match="source failed"):
        await conn.copy_to_table("t_copy_err", source=broken())
    assert await conn.fetchval("select count(*) from t_copy_err") == 0


async def test_notices_go_to_log_listeners(conn: driver.Connection) -> None:
    seen: list[str] = []
    conn.add_log_listener(lambda _c, msg: seen.append(msg.message))
    await conn.execute("do $$ begin raise notice 'hello %', 42; end $$")
    assert seen == ["hello 42"]


async def test_listen_notify(conn: driver.Connection) -> None:
    got: list[tuple[str, str]] = []
    await conn.add_listener("chan", lambda _c, _pid, ch, payload: got.append((ch, payload)))
    await conn.execute("notify chan, 'hi'")
    assert got == [("chan", "hi")]
    await conn.remove_listener("chan", lambda *_: None)  # not registered: no-op


async def test_server_facts(conn: driver.Connection) -> None:
    assert conn.get_server_version()[:2] == (15, 0)
    assert conn.server_parameters["client_encoding"] == "UTF8"
    pid = conn.get_server_pid()
    assert pid == await conn.fetchval("select pg_backend_pid()")


async def test_concurrent_use_is_refused_without_corrupting(conn: driver.Connection) -> None:
    # gather starts the tasks in order: the first is awaiting the server when the second runs.
    slow: object
    second: object
    slow, second = await asyncio.gather(
        conn.fetchval("select pg_sleep(0.1)::text"), conn.fetchval("select 1"),
        return_exceptions=True,
    )  # fmt: skip
    assert slow == ""
    assert isinstance(second, driver.InterfaceError)
    assert "another operation is in progress" in str(second) and "Pool" in str(second)
    assert await conn.fetchval("select 3") == 3


async def test_set_type_codec(conn: driver.Connection) -> None:
    await conn.execute("create type pg_temp.mood as enum ('sad', 'happy')")
    schema = await conn.fetchval("select nspname from pg_namespace where oid = pg_my_temp_schema()")
    assert await conn.fetchval("select 'happy'::mood") == "happy"  # unknown type -> str
    await conn.set_type_codec(
        "mood", schema=schema, decoder=lambda s: s.upper(), encoder=lambda v: v.lower()
    )
    assert await conn.fetchval("select 'happy'::mood") == "HAPPY"
    assert await conn.fetchval("select array['sad', 'happy']::mood[]") == ["SAD", "HAPPY"]
    with pytest.raises(driver.InterfaceError, match="does not exist"):
        await conn.set_type_codec("nope", decoder=str, encoder=str)


async def test_simple_query_without_args_allows_many_statements(conn: driver.Connection) -> None:
    tag = await conn.execute("create temp table t_multi (a int); insert into t_multi values (1)")
    assert tag == "INSERT 0 1"
    assert await conn.execute("") == ""


async def test_operation_timeout_cancels_the_query_and_keeps_the_connection(
    connect_args: object, transport: str
) -> None:
    args = connect_args("trust_user", transport)  # type: ignore[operator]
    async with await driver.connect(**args) as c:
        start = asyncio.get_running_loop().time()
        with pytest.raises(TimeoutError):
            await c.fetchval("select pg_sleep(30)", timeout=0.2)
        assert asyncio.get_running_loop().time() - start < 5
        assert not c.is_closed()
        assert await c.fetchval("select 'still here'") == "still here"
        with pytest.raises(TimeoutError):
            await c.execute("select pg_sleep(30)", timeout=0.2)
        assert await c.fetchval("select 1") == 1


async def test_notifications_arrive_while_idle(
    conn: driver.Connection, connect_args: object
) -> None:
    payloads: list[str] = []
    arrived = asyncio.Event()

    def on_notify(_c: driver.Connection, _pid: int, _channel: str, payload: str) -> None:
        payloads.append(payload)
        arrived.set()

    await conn.add_listener("idle_chan", on_notify)
    args = connect_args("trust_user", "tcp")  # type: ignore[operator]
    async with await driver.connect(**args) as other:
        await other.execute("notify idle_chan, 'first'")
        async with asyncio.timeout(10):
            await arrived.wait()  # delivered with no call on conn: the reader task did it
        assert await conn.fetchval("select 'op'") == "op"  # the stream is handed back
        arrived.clear()
        await other.execute("notify idle_chan, 'second'")
        async with asyncio.timeout(10):
            await arrived.wait()  # and the reader resumed after the operation
    assert payloads == ["first", "second"]
    await conn.remove_listener("idle_chan", on_notify)
    assert conn._session._reader is None


async def test_large_copy_streams_in_bounded_pieces(conn: driver.Connection) -> None:
    await conn.execute("create temp table t_big (id int, pad text)")

    def lines() -> Iterator[bytes]:
        for i in range(100_000):
            yield b"%d\t%s\n" % (i, b"x" * 20)

    assert await conn.copy_to_table("t_big", source=lines()) == "COPY 100000"
    total = await conn.fetchval("select sum(id) from t_big")
    assert total == sum(range(100_000))
    sizes: list[int] = []
    tag = await conn.copy_from_table("t_big", output=lambda b: sizes.append(len(b)))
    # the output gets what each read of the stream brought (as asyncpg), not one call per row;
    # a read is at most 64 KiB, so a chunk is bounded by that plus one row's message
    assert tag == "COPY 100000" and sum(sizes) == sum(len(x) for x in lines())
    assert 10 < len(sizes) < 1000 and max(sizes) <= 65536 + 64
