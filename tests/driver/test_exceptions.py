"""asyncpg's exception names and tree (driver.exceptions), checked against asyncpg itself, and
the attributes a real server error carries; network failures are OSErrors too."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import asyncpg.exceptions
import pytest

import driver
import driver.exceptions as dx
from driver import errors
from tests.driver.conftest import ConnectArgs
from tools.gen_sqlstates import class_name, read_table
from tools.pgcluster import Cluster, refused_port
from tools.relay import CountingRelay

ERRCODES = Path("/usr/share/postgresql/15/errcodes.txt")


def _asyncpg_classes() -> dict[str, type]:
    return {n: getattr(asyncpg.exceptions, n) for n in asyncpg.exceptions.__all__}


def test_every_asyncpg_exception_name_exists() -> None:
    missing = sorted(set(asyncpg.exceptions.__all__) - set(dx.__all__))
    assert missing == []
    for name in asyncpg.exceptions.__all__:
        assert hasattr(driver, name), name  # at the top too, as asyncpg.UniqueViolationError


def test_same_sqlstate_and_same_parent_as_asyncpg() -> None:
    checked = 0
    for name, cls in _asyncpg_classes().items():
        code = getattr(cls, "sqlstate", None)
        ours = getattr(dx, name)
        if code is None:
            continue
        checked += 1
        assert ours.sqlstate == code, name
        assert ours.__mro__[1].__name__ == cls.__mro__[1].__name__, name
    assert checked >= 262


def test_lookup_by_code_class_and_unknown() -> None:
    assert errors.lookup("23505") is dx.UniqueViolationError
    assert errors.lookup("23999") is dx.IntegrityConstraintViolationError
    assert errors.lookup("ZZ999") is dx.UnknownPostgresError
    assert errors.lookup("") is dx.UnknownPostgresError
    assert issubclass(dx.UnknownPostgresError, dx.PostgresError)


def test_older_names_stay_as_aliases() -> None:
    assert errors.UniqueViolation is dx.UniqueViolationError
    assert errors.AuthenticationError is dx.InvalidAuthorizationSpecificationError
    assert errors.InvalidPassword is dx.InvalidPasswordError
    assert issubclass(errors.InvalidPassword, errors.AuthenticationError)
    assert errors.SerializationFailure is dx.SerializationError
    assert errors.InvalidCachedStatement is dx.InvalidCachedStatementError
    assert issubclass(dx.InvalidCachedStatementError, dx.FeatureNotSupportedError)


def test_client_side_classes_keep_asyncpg_bases_and_ours() -> None:
    assert issubclass(dx.ClientConfigurationError, dx.InterfaceError)
    assert issubclass(dx.ClientConfigurationError, ValueError)
    assert issubclass(dx.ProtocolError, dx.InternalClientError)
    assert issubclass(dx.OutdatedSchemaCacheError, dx.InternalClientError)
    assert issubclass(dx.PostgresLogMessage, errors.PostgresMessage)
    assert not issubclass(dx.PostgresLogMessage, BaseException)
    assert issubclass(dx.PostgresWarning, dx.PostgresLogMessage)
    for cls in (dx.PostgresError, dx.InterfaceError, dx.InternalClientError, dx.TransportError):
        assert issubclass(cls, driver.Error)


def test_transport_errors_are_connection_errors() -> None:
    assert issubclass(dx.TransportError, ConnectionError)
    assert issubclass(errors.ConnectionLostError, OSError)
    exc = errors.ConnectionLostError("gone", unsent=True)
    assert str(exc) == "gone" and exc.unsent


@pytest.mark.skipif(not ERRCODES.exists(), reason="PostgreSQL's errcodes.txt not installed")
def test_the_generated_table_is_up_to_date() -> None:
    """driver/errors.py holds exactly the classes tools/gen_sqlstates.py makes from the table."""
    for code, sev, cond in read_table(ERRCODES):
        cls = errors.lookup(code) if sev == "E" else errors._LOG_BY_SQLSTATE[code]
        assert cls.__name__ == class_name(code, sev, cond)
        assert cls.sqlstate == code


def test_naming_rule() -> None:
    assert class_name("42601", "E", "syntax_error") == "PostgresSyntaxError"  # built-in clash
    assert class_name("2F000", "E", "sql_routine_exception") == "SQLRoutineError"
    assert class_name("HV00K", "E", "fdw_reply_handle") == "FDWReplyHandleError"
    assert class_name("01003", "W", "null_value_eliminated_in_set_function") == (
        "NullValueEliminatedInSetFunction"
    )


async def test_a_server_error_carries_asyncpg_attributes(
    connect_args: ConnectArgs, transport: str
) -> None:
    query = "SELECT * FROM _nonexistent_"
    conn = await driver.connect(**connect_args("trust_user", transport))
    try:
        for run in (conn.execute, conn.fetch):
            with pytest.raises(dx.UndefinedTableError) as info:
                await run(query)
            e = info.value
            assert (e.sqlstate, e.position, e.query, e.severity) == ("42P01", "15", query, "ERROR")
            assert e.severity_en == "ERROR"
            d = e.as_dict()
            assert d["sqlstate"] == "42P01" and d["query"] == query and "message" in d
            assert isinstance(e, dx.SyntaxOrAccessError) and isinstance(e, errors.UndefinedTable)
        with pytest.raises(dx.InvalidFunctionDefinitionError) as fn:
            await conn.execute("CREATE FUNCTION pg_temp.f() RETURNS bool AS $$ $$ LANGUAGE SQL")
        assert fn.value.detail and "DETAIL:  Function" in str(fn.value)
    finally:
        await conn.close()
    # the same error from asyncpg, attribute by attribute
    if transport == "tcp":
        aconn = await asyncpg.connect(connect_args("trust_user")["dsn"], ssl=False)
        try:
            with pytest.raises(asyncpg.UndefinedTableError) as ainfo:
                await aconn.execute(query)
        finally:
            await aconn.close()
        for attr in ("sqlstate", "position", "query", "severity", "severity_en", "message"):
            assert getattr(ainfo.value, attr) == getattr(e, attr), attr


async def test_a_refused_connect_is_an_oserror(connect_args: ConnectArgs) -> None:
    with refused_port() as port, pytest.raises(OSError) as info:
        await driver.connect(**connect_args("trust_user", port=port, connect_timeout=10))
    assert isinstance(info.value, driver.Error)


async def test_a_connection_lost_mid_query_is_an_oserror(
    pg: Cluster, connect_args: ConnectArgs
) -> None:
    async with CountingRelay("127.0.0.1", pg.port) as relay:
        conn = await driver.connect(**connect_args("trust_user", port=relay.port))
        query = asyncio.ensure_future(conn.fetchval("select pg_sleep(30)"))
        watcher = await driver.connect(**connect_args("trust_user"))
        seen = "select count(*) from pg_stat_activity where query = 'select pg_sleep(30)'"
        async with asyncio.timeout(10):  # until the server runs the query
            while not await watcher.fetchval(seen):
                pass
        await watcher.close()
        await relay.close()
        with pytest.raises(ConnectionError) as info:
            await asyncio.wait_for(query, 20)
        assert isinstance(info.value, driver.Error)
        await conn.close()
