"""asyncpg's Connection / PreparedStatement / Record API, over TCP and WebSocket, side by side
with asyncpg where both can answer the same question."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest

import driver
from driver.errors import (
    InterfaceError,
    PostgresLogMessage,
    PostgresWarning,
    StringDataRightTruncation,
)
from driver.listen import LoggedQuery
from driver.serverversion import ServerVersion, parse_server_version
from tests.driver.conftest import ConnectArgs


class Collector(list[Any]):
    """A callback that keeps what it is called with; ``wait(n)`` waits for the n-th call."""

    # a callback is found again by equality (asyncpg keeps them in a set): by identity here
    __eq__ = object.__eq__
    __hash__ = object.__hash__  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self._changed = asyncio.Event()

    def __call__(self, *args: Any) -> None:
        self.append(args[-1] if len(args) > 1 else args[0])
        self._changed.set()

    async def wait(self, n: int) -> None:
        async with asyncio.timeout(2):
            while len(self) < n:
                self._changed.clear()
                await self._changed.wait()


# ---- ServerVersion ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("15.4", (15, 0, 4, "final", 0)),
        ("15.4 (Debian 15.4-1.pgdg120+1)", (15, 0, 4, "final", 0)),
        ("9.6.24", (9, 6, 24, "final", 0)),
        ("9.4beta2", (9, 4, 0, "beta", 2)),
        ("17beta2", (17, 0, 0, "beta", 2)),
        ("16rc1", (16, 0, 0, "rc", 1)),
        ("10devel", (10, 0, 0, "devel", 0)),
        ("PostgreSQL 12.1 on x86_64-pc-linux-gnu", (12, 0, 1, "final", 0)),
    ],
)
def test_server_version_strings(text: str, expected: tuple[Any, ...]) -> None:
    assert parse_server_version(text) == expected
    assert parse_server_version(text) == asyncpg.serverversion.split_server_version_string(text)


def test_server_version_refuses_text_without_a_number() -> None:
    with pytest.raises(ValueError, match="cannot parse"):
        parse_server_version("no version here")


async def test_connection_facts_as_asyncpg(
    dconn: driver.Connection, apg: asyncpg.Connection
) -> None:
    version = dconn.get_server_version()
    assert isinstance(version, ServerVersion) and version == apg.get_server_version()
    assert version >= (9, 6) and version.major >= 10
    settings = dconn.get_settings()
    assert settings.client_encoding == apg.get_settings().client_encoding == "UTF8"
    assert settings.server_version == apg.get_settings().server_version
    with pytest.raises(AttributeError):
        _ = settings.no_such_parameter
    assert dconn.get_server_pid() == await dconn.fetchval("SELECT pg_backend_pid()")
    assert not dconn.is_in_transaction()
    async with dconn.transaction():
        assert dconn.is_in_transaction()
    await dconn.execute("SET application_name = 'changed'")
    assert dconn.get_settings().application_name == "changed"  # ParameterStatus kept current


async def test_transactions_nest_as_asyncpg(
    dconn: driver.Connection, apg: asyncpg.Connection
) -> None:
    """Savepoints nest in a block transaction() opened, never in a plain BEGIN's; ending a
    transaction twice fails in asyncpg's words (SQLAlchemy's asyncpg adapter matches them)."""
    for conn, errors in ((dconn, driver), (apg, asyncpg)):
        await conn.execute("BEGIN")
        with pytest.raises(errors.InterfaceError, match="in a manually started transaction"):
            await conn.transaction().start()
        await conn.execute("ROLLBACK")
        outer = conn.transaction()
        await outer.start()
        async with conn.transaction():  # a savepoint
            await conn.execute("SELECT 1")
        await outer.rollback()
        with pytest.raises(errors.InterfaceError, match="the transaction is already rolled back"):
            await outer.rollback()
        assert not conn.is_in_transaction()
        async with conn.transaction():  # top-level again
            assert conn.is_in_transaction()


# ---- PreparedStatement -------------------------------------------------------------------


async def test_prepared_statement_descriptions_as_asyncpg(
    dconn: driver.Connection, apg: asyncpg.Connection
) -> None:
    await dconn.execute(
        "DROP TYPE IF EXISTS api_mood CASCADE; CREATE TYPE api_mood AS ENUM ('ok', 'meh');"
        "DROP TYPE IF EXISTS api_pair CASCADE; CREATE TYPE api_pair AS (a int, b text);"
        "DROP DOMAIN IF EXISTS api_pos; CREATE DOMAIN api_pos AS int CHECK (VALUE > 0)"
    )
    sql = (
        "SELECT $1::int4 AS i, $2::text[] AS t, $3::api_mood AS mood, "
        "ROW(1, 'x')::api_pair AS pair, int4range(1, 2) AS r, $4::api_pos AS pos, "
        "'{}'::numeric[] AS nums, now() AS ts"
    )
    mine = await dconn.prepare(sql)
    theirs = await apg.prepare(sql)
    assert mine.get_parameters() == theirs.get_parameters()
    assert [tuple(a) for a in mine.get_attributes()] == [
        (a.name, tuple(a.type)) for a in theirs.get_attributes()
    ]
    attr = mine.get_attributes()[0]
    assert (attr.name, attr.type.oid, attr.type.name) == ("i", 23, "int4")
    assert mine.get_query() == sql
    assert isinstance(mine.get_parameters()[0], driver.Type)
    assert isinstance(attr, driver.Attribute)


async def test_types_not_built_in_are_named_from_the_catalog(dconn: driver.Connection) -> None:
    await dconn.execute(
        "DROP TYPE IF EXISTS api_color CASCADE; CREATE TYPE api_color AS ENUM ('red')"
    )
    st = await dconn.prepare("SELECT 'red'::api_color AS c, $1::api_color[] AS cs")
    color = st.get_attributes()[0].type
    assert (color.name, color.kind, color.schema) == ("api_color", "scalar", "public")
    assert st.get_parameters()[0].name == "api_color[]"
    assert st.get_parameters()[0].kind == "array"
    # described once per connection: a second statement finds the same Type
    again = await dconn.prepare("SELECT 'red'::api_color")
    assert again.get_attributes()[0].type is color


async def test_prepared_statement_methods(dconn: driver.Connection) -> None:
    await dconn.execute("DROP TABLE IF EXISTS api_t")
    create = await dconn.prepare("CREATE TABLE api_t (a int, b text)")
    assert create.get_statusmsg() is None
    await create.fetch()
    assert create.get_statusmsg() == "CREATE TABLE"
    assert create.get_attributes() == ()
    ins = await dconn.prepare("INSERT INTO api_t VALUES ($1, $2) RETURNING a * 10")
    assert await ins.fetchmany([(1, "x"), (2, "y"), (3, None)]) == [(10,), (20,), (30,)]
    await ins.executemany([(4, "z")])
    sel = await dconn.prepare("SELECT a, b FROM api_t WHERE a > $1 ORDER BY a")
    assert await sel.fetch(2) == [(3, None), (4, "z")]
    assert sel.get_statusmsg() == "SELECT 2"
    assert await sel.fetchrow(0) == (1, "x")
    assert await sel.fetchval(3, column=1) == "z"
    assert await sel.execute(0) == "SELECT 4"
    plan = await sel.explain(1)
    assert plan[0]["Plan"]["Node Type"] in ("Sort", "Seq Scan")
    analyzed = await ins.explain(99, "rolled back", analyze=True)
    assert "Actual Total Time" in analyzed[0]["Plan"]
    assert await dconn.fetchval("SELECT count(*) FROM api_t WHERE a = 99") == 0
    await dconn.execute("DROP TABLE api_t")


async def test_named_prepare_and_its_name_on_the_server(dconn: driver.Connection) -> None:
    st = await dconn.prepare("SELECT $1::int + 1", name="api_named")
    assert st.get_name() == "api_named"
    assert await st.fetchval(41) == 42
    names = await dconn.fetch("SELECT name FROM pg_prepared_statements WHERE name = 'api_named'")
    assert names == [("api_named",)]
    with pytest.raises(driver.exceptions.DuplicatePreparedStatementError):
        await dconn.prepare("SELECT 2", name="api_named")
    await st.close()
    with pytest.raises(InterfaceError, match="the prepared statement is closed"):
        await st.fetch(1)
    assert await dconn.fetchval("SELECT 7") == 7


async def test_empty_query_as_asyncpg(dconn: driver.Connection, apg: asyncpg.Connection) -> None:
    # SQLAlchemy's dialect pings with fetchrow(";")
    assert await dconn.fetchrow(";") is None and await apg.fetchrow(";") is None
    assert await dconn.fetch(";") == await apg.fetch(";") == []


# ---- Record -------------------------------------------------------------------------------


class Custom(driver.Record):
    pass


async def test_record_class_everywhere(connect_args: ConnectArgs, transport: str) -> None:
    conn = await driver.connect(**connect_args("trust_user", transport, record_class=Custom))
    try:
        sql = "SELECT 1 AS a, '2' AS b"
        assert isinstance(await conn.fetchrow(sql), Custom)
        assert isinstance((await conn.fetch(sql))[0], Custom)
        assert isinstance(await (await conn.prepare(sql)).fetchrow(), Custom)
        plain = await conn.fetchrow(sql, record_class=driver.Record)
        assert not isinstance(plain, Custom) and isinstance(plain, driver.Record)
        other = await conn.fetchrow(sql, record_class=Other)
        assert isinstance(other, Other) and repr(other) == "<Other a=1 b='2'>"
        async with conn.transaction():
            assert isinstance(await (await conn.cursor(sql)).fetchrow(), Custom)
    finally:
        await conn.close()


class Other(driver.Record):
    pass


async def test_record_class_rules_as_asyncpg(
    dconn: driver.Connection, connect_args: ConnectArgs, transport: str
) -> None:
    class WithInit(driver.Record):
        def __init__(self) -> None:
            raise AssertionError("never called")

    class WithNew(driver.Record):
        def __new__(cls) -> WithNew:
            raise AssertionError("never called")

    for bad in (WithInit, WithNew):
        with pytest.raises(InterfaceError, match=r"must not redefine __new__ or __init__"):
            await dconn.fetchrow("SELECT 1", record_class=bad)
    with pytest.raises(InterfaceError, match=r"expected to be a subclass of asyncpg\.Record"):
        await dconn.fetchrow("SELECT 1", record_class=dict)  # type: ignore[arg-type]
    with pytest.raises(InterfaceError, match=r"expected to be a subclass of asyncpg\.Record"):
        await driver.connect(**connect_args("trust_user", transport, record_class=dict))
    with pytest.raises(TypeError, match="cannot create"):
        driver.Record()
    with pytest.raises(TypeError, match="cannot create"):
        Custom()


async def test_duplicate_column_names_as_asyncpg(
    dconn: driver.Connection, apg: asyncpg.Connection
) -> None:
    sql = "SELECT 1 AS a, 2 AS b, 3 AS a, 4 AS c, 5 AS b"
    mine, theirs = await dconn.fetchrow(sql), await apg.fetchrow(sql)
    assert mine is not None and theirs is not None
    assert tuple(mine) == tuple(theirs)
    assert [mine[k] for k in "abc"] == [theirs[k] for k in "abc"] == [3, 5, 4]
    assert list(mine.items()) == list(theirs.items())
    assert list(mine.keys()) == list(theirs.keys())
    assert repr(mine) == repr(theirs) == "<Record a=1 b=2 a=3 c=4 b=5>"
    assert mine.get("c") == theirs.get("c") == 4 and mine.get("z", 0) == 0


# ---- listeners and loggers -----------------------------------------------------------------


async def test_log_listener_gets_asyncpg_message_classes(dconn: driver.Connection) -> None:
    got = Collector()
    async_got = Collector()

    async def async_listener(conn: driver.Connection, msg: PostgresLogMessage) -> None:
        async_got(conn, msg)

    dconn.add_log_listener(got)
    dconn.add_log_listener(async_listener)
    await dconn.execute(
        "DO $$ BEGIN RAISE NOTICE 'hello'; RAISE WARNING 'careful' USING HINT = 'h'; END $$"
    )
    await async_got.wait(2)
    assert [type(m).__name__ for m in got] == ["PostgresLogMessage", "PostgresWarning"]
    assert isinstance(got[1], PostgresWarning) and got[1].hint == "h"
    assert got[1].as_dict()["message"] == "careful" and got[1].severity == "WARNING"
    assert [m.message for m in async_got] == ["hello", "careful"]
    for code in ("99999", "01004"):
        await dconn.execute(f"DO $$ BEGIN RAISE WARNING 'w' USING ERRCODE = '{code}'; END $$")
    await got.wait(4)
    assert [(type(m), m.sqlstate) for m in got[2:]] == [
        (PostgresWarning, "99999"),
        (StringDataRightTruncation, "01004"),
    ]


@pytest.mark.parametrize("ending", ["close", "terminate", "killed"])
async def test_termination_listener_on_close_and_on_loss(
    connect_args: ConnectArgs, transport: str, dconn: driver.Connection, ending: str
) -> None:
    conn = await driver.connect(**connect_args("trust_user", transport))
    calls = Collector()
    async_calls = Collector()

    async def on_end(c: driver.Connection) -> None:
        async_calls(c)

    conn.add_termination_listener(calls)
    conn.add_termination_listener(on_end)
    removed = Collector()
    conn.add_termination_listener(removed)
    conn.remove_termination_listener(removed)
    if ending == "close":
        await conn.close()
    elif ending == "terminate":
        conn.terminate()
    else:
        await dconn.execute("SELECT pg_terminate_backend($1)", conn.get_server_pid())
        with pytest.raises(driver.Error):
            await conn.fetchval("SELECT 1")
    await calls.wait(1)
    await async_calls.wait(1)
    assert list(calls) == [conn] and list(async_calls) == [conn] and list(removed) == []
    await conn.close()
    await dconn.fetchval("SELECT 1")  # a round trip: time for a second call, if one came
    assert list(calls) == [conn]  # once


async def test_query_loggers_as_asyncpg(dconn: driver.Connection) -> None:
    records = Collector()
    with dconn.query_logger(records):
        await dconn.execute("SELECT 1")
        await dconn.fetch("SELECT $1::int", 5, timeout=3)
        with pytest.raises(driver.exceptions.UndefinedColumnError):
            await dconn.execute("SELECT x")
        await dconn.executemany("SELECT $1::int", [(1,), (2,)])
    await dconn.execute("SELECT 'not logged'")
    await records.wait(4)
    await dconn.fetchval("SELECT 1")  # a round trip: time for a fifth call, if one came
    queries = [r.query for r in records]
    assert queries == ["SELECT 1", "SELECT $1::int", "SELECT x", "SELECT $1::int"]
    assert records[3].args == ((1,), (2,))
    assert all(isinstance(r, LoggedQuery) for r in records)
    assert records[1].args == (5,) and records[1].timeout == 3
    assert records[0].exception is None
    assert type(records[2].exception) is driver.exceptions.UndefinedColumnError
    assert all(r.elapsed >= 0 and r.conn_addr[1] > 0 for r in records)


async def test_reset_and_use_after_close(dconn: driver.Connection) -> None:
    await dconn.execute("SET application_name = 'before reset'; BEGIN")
    dconn.add_log_listener(lambda c, m: None)
    await dconn.reset()
    assert not dconn.is_in_transaction()
    assert await dconn.fetchval("SHOW application_name") != "before reset"
    await dconn.reload_schema_state()
    assert await dconn.fetchval("SELECT 3") == 3
    await dconn.close()
    assert dconn.is_closed()
    with pytest.raises(InterfaceError, match="connection is closed"):
        await dconn.fetchval("SELECT 1")
    with pytest.raises(InterfaceError, match="connection is closed"):
        dconn.add_log_listener(lambda c, m: None)
    with pytest.raises(InterfaceError, match="connection is closed"):
        dconn.cursor("SELECT 1")
    with pytest.raises(InterfaceError, match="connection is closed"):
        dconn.transaction()
    for method in ("execute", "fetch", "fetchval", "fetchrow", "prepare"):
        with pytest.raises(InterfaceError, match="connection is closed"):
            await getattr(dconn, method)("SELECT 1")
    with pytest.raises(InterfaceError, match="connection is closed"):
        await dconn.executemany("SELECT 1", [])
    with pytest.raises(InterfaceError, match="connection is closed"):
        await dconn.add_listener("chan", lambda *a: None)
    with pytest.raises(InterfaceError, match="connection is closed"):
        await dconn.reset()


async def test_argument_count_checked_as_asyncpg(
    dconn: driver.Connection, apg: asyncpg.Connection
) -> None:
    for conn in (dconn, apg):
        for _ in range(2):  # first the statement is new, then it is the cached one
            with pytest.raises(Exception, match="expects 1 argument for this query, 0 were") as e:
                await conn.fetchval("SELECT $1::int")
            assert type(e.value).__name__ == "InterfaceError"
            with pytest.raises(Exception, match="expects 0 arguments for this query, 1 was"):
                await conn.fetchval("SELECT 1", 1)
        assert await conn.fetchval("SELECT $1::int", 5) == 5
    many = ",".join(f"${i}" for i in range(1, 32769))
    with pytest.raises(InterfaceError, match="cannot exceed 32767"):
        await dconn.fetchval(f"SELECT ARRAY[{many}]", *range(32768))
    assert await dconn.fetchval("SELECT 6") == 6


async def test_statusmsg_after_a_suspended_portal_is_none(dconn: driver.Connection) -> None:
    st = await dconn.prepare("SELECT generate_series(5, 10)")
    assert await st.fetchval() == 5
    assert st.get_statusmsg() is None  # PortalSuspended carries no tag
    await st.fetch()
    assert st.get_statusmsg() == "SELECT 6"


async def test_prepared_statement_errors_carry_the_pgbouncer_note(
    dconn: driver.Connection,
) -> None:
    for code, cls in (
        ("42P05", driver.exceptions.DuplicatePreparedStatementError),
        ("26000", driver.exceptions.InvalidSQLStatementNameError),
    ):
        with pytest.raises(cls) as e:
            await dconn.execute(f"DO $$ BEGIN RAISE EXCEPTION 'x' USING ERRCODE = '{code}'; END $$")
        assert e.value.hint is not None and "pgbouncer" in e.value.hint


async def test_prepared_statement_outdated_by_a_schema_change_as_asyncpg(
    dconn: driver.Connection, apg: asyncpg.Connection
) -> None:
    for conn, error in ((dconn, driver.exceptions.InvalidCachedStatementError),
                        (apg, asyncpg.InvalidCachedStatementError)):  # fmt: skip
        await conn.execute("DROP TABLE IF EXISTS api_inv; CREATE TABLE api_inv (a int, b int)")
        await conn.execute("INSERT INTO api_inv VALUES (1, 2)")
        st = await conn.prepare("SELECT * FROM api_inv")
        await conn.execute("ALTER TABLE api_inv ALTER COLUMN b SET DATA TYPE text")
        with pytest.raises(error, match="cached statement plan is invalid"):
            await st.fetchrow()
        await conn.execute("DROP TABLE api_inv")


async def test_connection_fetchmany_as_asyncpg(
    dconn: driver.Connection, apg: asyncpg.Connection
) -> None:
    sql = "SELECT $1::int * 2 AS d, $2::text AS t"
    args = [(1, "a"), (2, None), (3, "c")]
    mine = await dconn.fetchmany(sql, args, record_class=Other)
    theirs = await apg.fetchmany(sql, args)
    assert [tuple(r) for r in mine] == [tuple(r) for r in theirs] == [(2, "a"), (4, None), (6, "c")]
    assert all(isinstance(r, Other) for r in mine)
    assert await dconn.fetchmany(sql, []) == []


async def test_nested_transaction_isolation_as_asyncpg(
    dconn: driver.Connection, apg: asyncpg.Connection
) -> None:
    """A savepoint may restate the running transaction's isolation level (explicit, or the
    session default) but not ask for another: asyncpg's InterfaceError, same message."""
    for conn, error in ((dconn, InterfaceError), (apg, asyncpg.InterfaceError)):
        async with conn.transaction(isolation="repeatable_read"):
            async with conn.transaction(isolation="repeatable_read"):
                assert await conn.fetchval("show transaction_isolation") == "repeatable read"
            with pytest.raises(
                error,
                match=r"^nested transaction has a different isolation "
                r"level: current 'serializable' != outer 'repeatable_read'$",
            ):
                async with conn.transaction(isolation="serializable"):
                    pass
            assert await conn.fetchval("select 1") == 1  # the outer one is still usable
        await conn.execute("set session characteristics as transaction isolation level "
                           "serializable")  # fmt: skip
        try:
            async with conn.transaction():
                async with conn.transaction(isolation="serializable"):
                    pass
                with pytest.raises(error, match="current 'read_committed' != outer 'serializable'"):
                    async with conn.transaction(isolation="read_committed"):
                        pass
        finally:
            await conn.execute("reset default_transaction_isolation")
