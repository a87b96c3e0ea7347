"""Arguments checked on the client before anything is sent, with asyncpg's errors, side by side."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

import driver
from driver.argcheck import check_arg_count, executemany_rows
from driver.errors import DataError, InterfaceError
from tests.driver.conftest import ConnectArgs


@pytest.mark.parametrize(("expected", "passed", "text"), [
    (1, 0, "the server expects 1 argument for this query, 0 were passed"),
    (0, 1, "the server expects 0 arguments for this query, 1 was passed"),
    (2, 3, "the server expects 2 arguments for this query, 3 were passed"),
])
def test_arg_count_message(expected: int, passed: int, text: str) -> None:
    with pytest.raises(InterfaceError) as info:
        check_arg_count(expected, passed)
    assert str(info.value) == text


def test_matching_count_passes() -> None:
    check_arg_count(2, 2)


@pytest.mark.parametrize("row", [{1: 0}, {1, 2}, "ab", b"ab", 5, None])
def test_executemany_rows_refuses_non_sequences(row: Any) -> None:
    rows = executemany_rows([(0,), row])
    assert next(rows) == (0,)
    with pytest.raises(DataError, match=r"element #1: expected a sequence"):
        next(rows)


def test_executemany_rows_passes_sequences_and_generator_errors() -> None:
    assert list(executemany_rows([(1,), [2], (3, 4)])) == [(1,), [2], (3, 4)]
    with pytest.raises(ZeroDivisionError):
        list(executemany_rows([1 / 0] for _ in range(2)))


async def test_executemany_with_a_dict_row_raises_and_inserts_nothing(
    connect_args: ConnectArgs, transport: str
) -> None:
    conn = await driver.connect(**connect_args("trust_user", transport))
    try:
        await conn.execute("create temp table exmany (b int)")
        with pytest.raises(DataError, match="element #1: expected a sequence"):
            await conn.executemany("insert into exmany (b) values ($1)", [(0,), {1: 0}])
        assert await conn.fetchval("select count(*) from exmany") == 0
    finally:
        await conn.close()
    if transport == "tcp":  # asyncpg: the same class and words
        aconn = await asyncpg.connect(connect_args("trust_user")["dsn"], ssl=False)
        try:
            await aconn.execute("create temp table exmany (b int)")
            with pytest.raises(asyncpg.DataError, match="element #1: expected a sequence"):
                await aconn.executemany("insert into exmany (b) values ($1)", [(0,), {1: 0}])
        finally:
            await aconn.close()


async def test_a_prepared_statement_checks_the_argument_count(
    connect_args: ConnectArgs, transport: str
) -> None:
    conn = await driver.connect(**connect_args("trust_user", transport))
    try:
        stmt = await conn.prepare("select $1::int")
        with pytest.raises(InterfaceError, match="expects 1 argument for this query, 0 were"):
            await stmt.fetchval()
        assert await stmt.fetchval(5) == 5  # the connection is untouched
    finally:
        await conn.close()
    if transport == "tcp":
        aconn = await asyncpg.connect(connect_args("trust_user")["dsn"], ssl=False)
        try:
            astmt = await aconn.prepare("select $1::int")
            with pytest.raises(asyncpg.InterfaceError, match="expects 1 argument for this query"):
                await astmt.fetchval()
        finally:
            await aconn.close()
