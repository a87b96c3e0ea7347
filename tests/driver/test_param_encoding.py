"""Parameters encoded by their declared type as asyncpg encodes them, side by side with asyncpg:
prepared statements, executemany() and the typed path take the server's parameter types, take
what asyncpg takes (``11.0`` for an int4 is 11) and refuse what it refuses, with its DataError
message, before anything is sent (the connection stays usable)."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import asyncpg
import pytest

import driver
from driver.errors import DataError

# (parameter type, value): asyncpg takes the value; the result must be the same
TAKEN = [
    ("int4", 11.0),
    ("int8", 1.5),
    ("int4", Decimal("7")),
    ("int2", True),
    ("float8", Decimal("0.5")),
    ("float4", 3),
    ("numeric", "1.5"),
    ("uuid", "00000000-0000-0000-0000-000000000001"),
    ("bytea", bytearray(b"ab")),
    ("timestamp", dt.date(2024, 1, 2)),
    ("int4[]", (1, 2)),
]

# (parameter type, value): asyncpg refuses it on the client, naming the argument
REFUSED = [
    ("int4", "bad"),
    ("int8", "2"),
    ("float8", "1.5"),
    ("bool", 1),
    ("text", 5),
    ("varchar", b"x"),
    ("bytea", "x"),
    ("date", 5),
    ("time", "x"),
    ("interval", "1 day"),
    ("timestamptz", "foo"),
    ("int4[]", 5),
    ("int4[]", [1, "t"]),
    ("int2", 2**15),
    ("float4", 4.1e40),
]


def _message(exc: BaseException) -> str:
    """The part of asyncpg's message that names the argument and the value."""
    return str(exc).split(" (", 1)[0]


@pytest.mark.parametrize(("typ", "value"), TAKEN)
async def test_prepared_takes_what_asyncpg_takes(
    dconn: driver.Connection, apg: asyncpg.Connection, typ: str, value: Any
) -> None:
    sql = f"select $1::{typ}"
    expected = await (await apg.prepare(sql)).fetchval(value)
    assert await (await dconn.prepare(sql)).fetchval(value) == expected


@pytest.mark.parametrize(("typ", "value"), REFUSED)
async def test_prepared_refuses_what_asyncpg_refuses(
    dconn: driver.Connection, apg: asyncpg.Connection, typ: str, value: Any
) -> None:
    sql = f"select $1::{typ}"
    with pytest.raises(asyncpg.DataError) as theirs:
        await (await apg.prepare(sql)).fetchval(value)
    with pytest.raises(DataError) as ours:
        await (await dconn.prepare(sql)).fetchval(value)
    assert _message(ours.value) == _message(theirs.value)
    assert await dconn.fetchval("select 1") == 1  # nothing was sent: still usable


async def test_executemany_encodes_by_column_type(
    dconn: driver.Connection, apg: asyncpg.Connection
) -> None:
    """The row's Python types do not decide: 11.0 goes into an int column as 11, and a str
    where an int is expected is refused naming the row, before any row is written."""
    await dconn.execute("create temp table em (a text, b int, c timestamptz)")
    when = dt.datetime(2024, 1, 2, tzinfo=dt.UTC)
    await dconn.executemany(
        "insert into em values ($1, $2, $3)", [("x", 11.0, when), ("y", 2, None)]
    )
    assert [tuple(r) for r in await dconn.fetch("select * from em order by b")] == [
        ("y", 2, None),
        ("x", 11, when),
    ]
    bad = [("z", 0, None), ("w", "bad", None)]
    await apg.execute("create temp table em (a text, b int, c timestamptz)")
    with pytest.raises(asyncpg.DataError) as theirs:
        await apg.executemany("insert into em values ($1, $2, $3)", bad)
    with pytest.raises(DataError) as ours:
        await dconn.executemany("insert into em values ($1, $2, $3)", bad)
    assert _message(ours.value) == _message(theirs.value)
    assert "element #1 of executemany() sequence: 'bad'" in str(ours.value)
    assert await dconn.fetchval("select count(*) from em") == 2


async def test_executemany_statement_survives_discard_all(dconn: driver.Connection) -> None:
    """The typed statement is cached; after DISCARD ALL drops it on the server it is
    prepared again (outside a transaction), the rows encoded once."""
    await dconn.execute("create table if not exists em_discard (b int)")
    try:
        await dconn.execute("truncate em_discard")
        await dconn.executemany("insert into em_discard values ($1)", [(1,), (2,)])
        await dconn.execute("discard all")
        await dconn.executemany("insert into em_discard values ($1)", [(3,)])
        assert await dconn.fetchval("select sum(b) from em_discard") == 6
    finally:
        await dconn.execute("drop table em_discard")


@pytest.mark.parametrize(
    ("sql", "value", "text"),
    [
        ("select $1::int[]", 1, "a sized iterable container expected"),
        ("select $1::int4range", "aa", "list, tuple or Range object expected"),
        ("select $1::int4multirange", 1, "expected a sequence"),
    ],
)
async def test_one_flight_refusal_gives_asyncpgs_error(
    dconn: driver.Connection, apg: asyncpg.Connection, sql: str, value: Any, text: str
) -> None:
    """A statement sent in one flight with inferred types, refused by the server at Bind:
    the error is the DataError asyncpg raises on the client for that value."""
    with pytest.raises(asyncpg.DataError, match=text):
        await apg.fetchval(sql, value)
    with pytest.raises(DataError, match=rf"invalid input for query argument \$1: .*{text}"):
        await dconn.fetchval(sql, value)
    assert await dconn.fetchval("select 1") == 1


async def test_set_type_codec_on_array_type_is_refused(
    dconn: driver.Connection, apg: asyncpg.Connection
) -> None:
    text = r"cannot use custom codec on type pg_catalog\._int4"
    with pytest.raises(asyncpg.InterfaceError, match=text):
        await apg.set_type_codec("_int4", schema="pg_catalog", encoder=str, decoder=int)
    with pytest.raises(driver.InterfaceError, match=text):
        await dconn.set_type_codec("_int4", schema="pg_catalog", encoder=str, decoder=int)


def test_uuid_like_objects() -> None:
    from driver.codecs import default_registry

    class Like:
        bytes = uuid.UUID(int=1).bytes

    assert default_registry.encode(Like(), 2950)[1] == str(uuid.UUID(int=1)).encode()


@pytest.mark.parametrize(
    ("sql", "value"),
    [
        ("select $1::int4range", (1, 9)),
        ("select $1::int4range", (None, 2)),
        ("select $1::int4range", (2,)),
        ("select $1::int4multirange", [(1, 9), (9, 11)]),
    ],
)
async def test_range_from_a_sequence_has_both_bounds_inclusive(
    dconn: driver.Connection, apg: asyncpg.Connection, sql: str, value: Any
) -> None:
    """asyncpg reads ``(1, 9)`` as ``[1, 9]`` (int4range gives ``[1, 10)``), not ``[1, 9)``."""
    expected = await apg.fetchval(sql, value)
    got = await dconn.fetchval(sql, value)
    as_tuples = [(r.lower, r.upper) for r in (got if isinstance(got, list) else [got])]
    assert as_tuples == [
        (r.lower, r.upper) for r in (expected if isinstance(expected, list) else [expected])
    ]


@pytest.mark.parametrize(
    ("sql", "value"),
    [
        ("select $1::txid_snapshot", (100, 1000, (100, 200, 300, 400))),
        ("select $1::pg_snapshot", (10, 20, ())),
        ("select $1::varbit", b"\x01"),
        ("select $1::varbit", bytearray(b"\x02")),
        ("select $1::path", ((0.0, 0.0), (1.0, 1.0))),
        ("select $1::path", [(0.0, 0.0), (1.0, 1.0)]),
        ("select $1::numeric", Decimal("100")),
        ("select $1::numeric", Decimal("1.0E-1000")),
        ("select $1::numeric", Decimal("1000000000000000.00000000000000")),
    ],
)
async def test_values_as_asyncpg_reads_and_returns_them(
    dconn: driver.Connection, apg: asyncpg.Connection, sql: str, value: Any
) -> None:
    """Through a prepared statement (the types known): the same value back, in the same
    form (a Decimal's digits and exponent, a path's closedness)."""
    expected = await (await apg.prepare(sql)).fetchval(value)
    got = await (await dconn.prepare(sql)).fetchval(value)
    if isinstance(expected, Decimal):
        assert got.as_tuple() == expected.as_tuple()
    elif "path" in sql:
        assert (list(got), got.is_closed) == (list(expected), expected.is_closed)
    elif "varbit" in sql:
        assert got.as_string() == expected.as_string()
    else:
        assert got == expected
