"""conn.batch(): several parameterised statements in one round trip, as one transaction or
not; the first error fails the batch, and inside a transaction undoes all of it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

import driver
from driver import errors
from tests.conftest import ProxyProcess
from tests.driver.conftest import ConnectArgs
from tools.pgcluster import Cluster
from tools.relay import CountingRelay


@pytest.fixture
async def c(connect_args: ConnectArgs, transport: str) -> AsyncIterator[driver.Connection]:
    conn = await driver.connect(**connect_args("scram_user", transport))
    await conn.execute("create temp table items (id int primary key, name text)")
    try:
        yield conn
    finally:
        await conn.close()


async def test_results_of_every_statement(c: driver.Connection) -> None:
    results = await c.batch(
        [
            ("insert into items values ($1, $2), ($3, $4)", [1, "a", 2, "b"]),
            ("update items set name = upper(name) where id = $1", (2,)),
            "select id, name from items order by id",
            ("select $1::int + $2::int as s", [40, 2]),
        ]
    )
    assert [r.status for r in results] == ["INSERT 0 2", "UPDATE 1", "SELECT 2", "SELECT 1"]
    assert results[0] == [] and [tuple(r) for r in results[2]] == [(1, "a"), (2, "B")]
    assert results[2][1]["name"] == "B" and results[3][0]["s"] == 42
    assert not c.is_in_transaction()


async def test_an_error_rolls_the_whole_batch_back_and_names_the_statement(
    c: driver.Connection,
) -> None:
    await c.execute("insert into items values (1, 'kept')")
    with pytest.raises(errors.UniqueViolation) as info:
        await c.batch(
            [
                ("insert into items values ($1, $2)", [2, "undone"]),
                ("insert into items values ($1, $2)", [1, "duplicate"]),
                ("insert into items values ($1, $2)", [3, "never run"]),
            ]
        )
    assert "in batch statement 1" in "".join(getattr(info.value, "__notes__", []))
    assert not c.is_in_transaction() and not c.is_closed()
    assert await c.fetchval("select string_agg(name, ',' order by id) from items") == "kept"


async def test_isolation_and_read_only_apply_to_the_batch(c: driver.Connection) -> None:
    results = await c.batch(["show transaction_isolation", "show transaction_read_only"],
                            isolation="serializable", readonly=True)  # fmt: skip
    assert [r[0][0] for r in results] == ["serializable", "on"]
    with pytest.raises(errors.PostgresError, match="read-only transaction") as info:
        await c.batch(
            [
                ("insert into items values ($1, 'x')", [9]),  # temp: allowed
                "create table batch_ro (x int)",
            ],
            readonly=True,
        )
    assert info.value.sqlstate == "25006"
    assert await c.fetchval("select count(*) from items") == 0  # undone with the rest


async def test_without_a_transaction_each_statement_commits_on_its_own(
    c: driver.Connection,
) -> None:
    with pytest.raises(errors.UniqueViolation):
        await c.batch(
            [
                ("insert into items values ($1, $2)", [1, "first"]),
                ("insert into items values ($1, $2)", [1, "duplicate"]),
                ("insert into items values ($1, $2)", [2, "after"]),
            ],
            transaction=False,
        )
    assert await c.fetchval("select string_agg(name, ',' order by id) from items") == "first,after"
    assert not c.is_in_transaction()


async def test_inside_a_transaction_a_failed_batch_is_undone_to_its_savepoint(
    c: driver.Connection,
) -> None:
    async with c.transaction():
        await c.execute("insert into items values (1, 'outer')")
        with pytest.raises(errors.UniqueViolation):
            await c.batch(
                [
                    ("insert into items values ($1, 'in')", [2]),
                    ("insert into items values ($1, 'dup')", [1]),
                ]
            )
        assert c.is_in_transaction()
        done = await c.batch([("insert into items values ($1, 'ok')", [3])])
        assert done[0].status == "INSERT 0 1"
        with pytest.raises(driver.InterfaceError, match="outermost"):
            await c.batch(["select 1"], isolation="serializable")
    assert await c.fetchval("select string_agg(name, ',' order by id) from items") == "outer,ok"


async def test_a_commit_time_failure_is_raised(c: driver.Connection) -> None:
    await c.execute("create temp table parent (id int primary key)")
    await c.execute("create temp table child (pid int references parent deferrable "
                    "initially deferred)")  # fmt: skip
    with pytest.raises(errors.PostgresError) as info:
        await c.batch([("insert into child values ($1)", [7]), "select 1"])
    assert info.value.sqlstate == "23503"  # checked at COMMIT, after every statement ran
    assert await c.fetchval("select count(*) from child") == 0 and not c.is_in_transaction()


@pytest.mark.parametrize("bad", [("select $1",), ("select $1", "abc"), 42, ("select 1", 1)])
async def test_bad_statements_are_refused_before_anything_is_sent(
    c: driver.Connection, bad: Any
) -> None:
    with pytest.raises(driver.InterfaceError, match="batch statement 1"):
        await c.batch(["select 1", bad])
    with pytest.raises(driver.InterfaceError, match="isolation"):
        await c.batch(["select 1"], isolation="bogus")
    assert await c.fetchval("select 1") == 1  # nothing half-sent


async def test_a_batch_is_one_round_trip_and_one_message(pg: Cluster, proxy: ProxyProcess) -> None:
    async with CountingRelay("127.0.0.1", proxy.port) as relay:
        conn = await driver.connect(pg.dsn("scram_user"), sslmode="disable",
                                    ws_proxy=f"127.0.0.1:{relay.port}/v2",
                                    use_secure_websocket=False)  # fmt: skip
        try:
            await conn.execute("create temp table t (x int)")
            before = relay.round_trips
            messages = len(relay.last().ws_up.messages)
            results = await conn.batch(
                [("insert into t values ($1)", [i]) for i in range(50)] + ["select sum(x) from t"],
                isolation="repeatable_read",
            )
            assert relay.round_trips - before == 1
            assert len(relay.last().ws_up.messages) - messages == 1
            assert results[-1][0][0] == sum(range(50))
            with pytest.raises(errors.DivisionByZero):
                await conn.batch(["select 1", ("select 1 / $1::int", [0])])
            assert relay.round_trips - before == 2  # the failure cost no extra trip
        finally:
            await conn.close()


async def test_a_batch_can_ride_the_last_auth_flight(pg: Cluster, proxy: ProxyProcess) -> None:
    async with CountingRelay("127.0.0.1", proxy.port) as relay:
        conn = await driver.connect(pg.dsn("scram_user"), sslmode="disable", wait_ready=False,
                                    ws_proxy=f"127.0.0.1:{relay.port}/v2",
                                    use_secure_websocket=False)  # fmt: skip
        try:
            results = await conn.batch(["select 1", ("select $1::text", ["two"])])
            assert [r[0][0] for r in results] == [1, "two"]
            assert relay.round_trips == 3  # upgrade, startup + client-first, the rest
        finally:
            await conn.close()
