"""asyncpg's statement-cache knobs, seen from the server (pg_prepared_statements of the same
session), over TCP and WebSocket: what is cached, what is not, and when it is let go."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import asyncpg
import pytest

import driver
from driver.statement import Statement, StatementCache
from tests.driver.conftest import ConnectArgs

PREPARED = "select name from pg_prepared_statements where statement = $1"


async def _names(conn: driver.Connection, sql: str) -> list[str]:
    return [r[0] for r in await conn.fetch(PREPARED, sql)]


async def test_a_query_longer_than_max_cacheable_statement_size_is_not_cached(
    connect_args: ConnectArgs, transport: str
) -> None:
    conn = await driver.connect(
        **connect_args("trust_user", transport, max_cacheable_statement_size=200)
    )
    try:
        short = "select $1::int + 1"
        long = "select $1::int + 2 -- " + "x" * 200
        for sql in (short, long, short, long):
            assert await conn.fetchval(sql, 1) in (2, 3)
        assert len(await _names(conn, short)) == 1  # cached once, reused
        assert await _names(conn, long) == []  # the unnamed statement, each time
    finally:
        await conn.close()


async def test_default_max_cacheable_statement_size_is_asyncpg_s(
    dconn: driver.Connection, apg: asyncpg.Connection
) -> None:
    for size, cached in ((15 * 1024, True), (15 * 1024 + 1, False)):
        sql = "select $1::int -- "
        sql += "y" * (size - len(sql))
        for conn in (dconn, apg):
            assert await conn.fetchval(sql, 7) == 7
            found = await conn.fetch(PREPARED, sql)
            assert bool(found) is cached, (type(conn), size)


async def test_a_cached_statement_is_prepared_again_after_its_lifetime(
    connect_args: ConnectArgs, transport: str
) -> None:
    conn = await driver.connect(
        **connect_args("trust_user", transport, max_cached_statement_lifetime=0.2)
    )
    try:
        sql = "select $1::int * 2"
        assert await conn.fetchval(sql, 2) == 4
        first = await _names(conn, sql)
        assert len(first) == 1
        # the lifetime is wall-clock time: poll until the statement has been replaced
        async with asyncio.timeout(10):
            while (now := await _names(conn, sql)) == first:
                await asyncio.sleep(0.05)
                assert await conn.fetchval(sql, 3) == 6
        assert len(now) == 1 and now != first  # the old one was closed on the server
    finally:
        await conn.close()


def test_lifetime_and_size_zero_turn_the_knobs_off() -> None:
    cache = StatementCache(10, lifetime=0, max_query_size=0)
    stmt = Statement(cache.name_for("x" * 100_000), "x" * 100_000, ())
    assert stmt.name  # no size limit
    cache.put(("x", ()), stmt)
    assert stmt.expires == 0 and cache.get(("x", ())) is stmt and cache.expired == []


CASES = list(
    itertools.product(
        ("max_cacheable_statement_size", "max_cached_statement_lifetime", "statement_cache_size"),
        (None, -1, True, False, "3"),
    )
)


@pytest.mark.parametrize(("arg", "value"), CASES)
async def test_cache_knobs_checked_as_asyncpg(arg: str, value: Any) -> None:
    """Both refuse before any I/O (port 1 would refuse a connection anyway)."""
    where: dict[str, Any] = {"host": "127.0.0.1", "port": 1, "user": "u", "ssl": False}
    with pytest.raises(ValueError, match="greater or equal") as mine:
        await driver.connect(**where, **{arg: value})
    if value != "3":  # asyncpg compares "3" < 0: a TypeError there
        with pytest.raises(ValueError, match="greater or equal") as theirs:
            await asyncpg.connect(**where, **{arg: value})
        assert str(mine.value) == str(theirs.value)


@pytest.mark.parametrize("value", [-1, "a", True, False, 0, 0.0])
async def test_command_timeout_checked_as_asyncpg(value: Any) -> None:
    where: dict[str, Any] = {"host": "127.0.0.1", "port": 1, "user": "u", "ssl": False}
    # (asyncpg shows the value after float(): "got -1.0"; the given one here)
    message = "^invalid command_timeout value: expected greater than 0 float"
    with pytest.raises(ValueError, match=message):
        await driver.connect(**where, command_timeout=value)
    with pytest.raises(ValueError, match=message):
        await asyncpg.connect(**where, command_timeout=value)
