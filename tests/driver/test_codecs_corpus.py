"""The codecs against the real server and asyncpg: decoding the raw text output of every corpus
literal gives what asyncpg returns, and every value goes back to the server as a parameter."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import psycopg
import pytest
from psycopg import pq

from driver.codecs import CodecError, default_registry
from tests.driver.codec_corpus import ASYNCPG_DIFFERS, CASES, TIMEZONES, Case, from_asyncpg, same
from tools.pgcluster import Cluster


@pytest.fixture(scope="module")
def raw(pg: Cluster) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(pg.dsn("trust_user"), sslmode="disable", autocommit=True) as conn:
        yield conn


@pytest.fixture(scope="module")
async def apg(pg: Cluster) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(pg.dsn("trust_user"), ssl=False)
    yield conn
    await conn.close()


def _check(res: pq.abc.PGresult) -> pq.abc.PGresult:
    if res.status != pq.ExecStatus.TUPLES_OK:
        raise AssertionError((res.error_message or b"").decode())
    return res


def fetch_raw(conn: psycopg.Connection[Any], sql: str) -> tuple[int, bytes | None]:
    """The column's type OID and its exact text-format bytes, as the driver receives them."""
    res = _check(conn.pgconn.exec_(f"select {sql}".encode()))
    return res.ftype(0), res.get_value(0, 0)


def decode(oid: int, data: bytes | None) -> Any:
    return None if data is None else default_registry.decoder(oid)(data)


def ours(conn: psycopg.Connection[Any], sql: str) -> Any:
    return decode(*fetch_raw(conn, sql))


async def theirs(apg: asyncpg.Connection, conn: psycopg.Connection[Any], sql: str) -> Any:
    oid, _ = fetch_raw(conn, sql)
    return from_asyncpg(await apg.fetchval(f"select {sql}"), oid)


async def _set_timezone(tz: str, conn: psycopg.Connection[Any], apg: asyncpg.Connection) -> None:
    conn.execute(f"set timezone to '{tz}'")
    await apg.execute(f"set timezone to '{tz}'")


@pytest.mark.parametrize("case", CASES, ids=[c.sql for c in CASES])
async def test_decoding_matches_asyncpg(
    case: Case, raw: psycopg.Connection[Any], apg: asyncpg.Connection
) -> None:
    await _set_timezone("UTC", raw, apg)
    expected = await theirs(apg, raw, case.sql)
    got = ours(raw, case.sql)
    assert same(got, expected), f"{case.sql}: driver {got!r} != asyncpg {expected!r}"


TEMPORAL = [c.sql for c in CASES if any(w in c.sql for w in ("time", "date", "interval"))]


@pytest.mark.parametrize("tz", TIMEZONES)
async def test_temporal_decoding_matches_asyncpg_in_every_timezone(
    tz: str, raw: psycopg.Connection[Any], apg: asyncpg.Connection
) -> None:
    await _set_timezone(tz, raw, apg)
    try:
        mismatches = []
        for sql in TEMPORAL:
            got, expected = ours(raw, sql), await theirs(apg, raw, sql)
            if not same(got, expected):
                mismatches.append((sql, got, expected))
        assert not mismatches
        assert len(TEMPORAL) > 40
    finally:
        await _set_timezone("UTC", raw, apg)


async def test_the_session_timezone_shows_in_the_text_but_not_in_the_value(
    raw: psycopg.Connection[Any], apg: asyncpg.Connection
) -> None:
    """Amsterdam in 1850 used local mean time, +00:19:32: an offset with seconds."""
    await _set_timezone("Europe/Amsterdam", raw, apg)
    try:
        oid, text = fetch_raw(raw, "'1850-01-01 12:00:00+00'::timestamptz")
        assert text == b"1850-01-01 12:19:32+00:19:32"
        value = decode(oid, text)
        assert value.isoformat() == "1850-01-01T12:00:00+00:00"
    finally:
        await _set_timezone("UTC", raw, apg)


@pytest.mark.parametrize("sql", list(ASYNCPG_DIFFERS))
async def test_known_differences_from_asyncpg(
    sql: str, raw: psycopg.Connection[Any], apg: asyncpg.Connection
) -> None:
    expected, _reason = ASYNCPG_DIFFERS[sql]
    got = ours(raw, sql)
    assert same(got, expected)
    assert not same(got, await theirs(apg, raw, sql))


@pytest.mark.parametrize(
    "sql",
    [
        "'0001-01-01 BC'::date",
        "'10000-01-01'::date",
        "'0044-03-15 12:00 BC'::timestamp",
        "'10000-01-01 00:00'::timestamp",
        "'0044-03-15 12:00+00 BC'::timestamptz",
        "'12000-01-01 00:00+00'::timestamptz",
        "'24:00:00'::time",
        "'24:00:00+01'::timetz",
    ],
)
async def test_unrepresentable_values_raise_like_asyncpg(
    sql: str, raw: psycopg.Connection[Any], apg: asyncpg.Connection
) -> None:
    oid, data = fetch_raw(raw, sql)
    with pytest.raises(CodecError, match="cannot decode"):
        decode(oid, data)
    with pytest.raises((ValueError, OverflowError)):
        await apg.fetchval(f"select {sql}")


def test_huge_interval_raises_instead_of_wrapping(raw: psycopg.Connection[Any]) -> None:
    """asyncpg overflows a C int here and returns 545490560 days; the driver refuses."""
    with pytest.raises(CodecError, match="beyond timedelta"):
        ours(raw, "'178000000 years'::interval")


# -- values back to the server as parameters ----------------------------------------------


def _type_name(conn: psycopg.Connection[Any], oid: int) -> str:
    """typname, not format_type(): format_type says 'character', which means char(1)."""
    query = b"select quote_ident(typname) from pg_type where oid = $1::oid"
    res = _check(conn.pgconn.exec_params(query, [b"%d" % oid]))
    return (res.get_value(0, 0) or b"").decode()


def _send(
    conn: psycopg.Connection[Any], query: str, oid: int, text: bytes | None
) -> tuple[int, bytes | None]:
    res = _check(conn.pgconn.exec_params(query.encode(), [text], [oid]))
    return res.ftype(0), res.get_value(0, 0)


ROUNDTRIP = [c for c in CASES if c.roundtrip]


@pytest.mark.parametrize("case", ROUNDTRIP, ids=[c.sql for c in ROUNDTRIP])
def test_value_round_trips_with_known_parameter_type(
    case: Case, raw: psycopg.Connection[Any]
) -> None:
    oid, data = fetch_raw(raw, case.sql)
    value = decode(oid, data)
    param_oid, text = default_registry.encode(value, oid)
    assert param_oid == oid
    back_oid, back = _send(raw, "select $1", oid, text)
    assert back_oid == oid
    assert same(decode(back_oid, back), value), (value, text, back)


INFERRED = [c for c in CASES if c.roundtrip and c.infer]


@pytest.mark.parametrize("case", INFERRED, ids=[c.sql for c in INFERRED])
def test_value_round_trips_with_inferred_parameter_type(
    case: Case, raw: psycopg.Connection[Any]
) -> None:
    oid, data = fetch_raw(raw, case.sql)
    value = decode(oid, data)
    param_oid, text = default_registry.encode(value)
    if value is None:
        assert (param_oid, text) == (0, None)
    back_oid, back = _send(raw, f"select $1::{_type_name(raw, oid)}", param_oid, text)
    assert back_oid == oid
    assert same(decode(back_oid, back), value), (value, param_oid, text, back)


def test_inferred_oids_name_the_natural_type(raw: psycopg.Connection[Any]) -> None:
    """Without a cast, the declared OID alone decides the server's type."""
    for value, type_name in [
        (1, "bigint"),
        (2**63, "numeric"),
        (1.5, "double precision"),
        (True, "boolean"),
        (b"x", "bytea"),
        ({"a": 1}, "jsonb"),
        ([1, 2], "bigint[]"),
        ([1, 2.5], "double precision[]"),
        ([[1, None], [2**64, 3]], "numeric[]"),
    ]:
        param_oid, text = default_registry.encode(value)
        res = _check(raw.pgconn.exec_params(b"select pg_typeof($1)::text, $1", [text], [param_oid]))
        assert res.get_value(0, 0) == type_name.encode(), value
        assert decode(res.ftype(1), res.get_value(0, 1)) == value  # big ints come back Decimal


def test_bytea_escape_output_decodes_like_hex(raw: psycopg.Connection[Any]) -> None:
    """bytea_output = 'escape' is a session setting a user may pick; both formats decode."""
    exprs = [c.sql for c in CASES if "bytea" in c.sql or "convert_to" in c.sql]
    exprs.append(
        "decode(string_agg(lpad(to_hex(b), 2, '0'), ''), 'hex') from generate_series(0, 255) b"
    )
    hex_values = [ours(raw, sql) for sql in exprs]
    raw.execute("set bytea_output = 'escape'")
    try:
        escaped = [fetch_raw(raw, sql) for sql in exprs]
        assert any(b"\\\\" in (data or b"") for _, data in escaped)  # really escape format
        assert [decode(oid, data) for oid, data in escaped] == hex_values
        assert hex_values[-1] == bytes(range(256))
    finally:
        raw.execute("set bytea_output = 'hex'")


def _for_asyncpg(value: Any, oid: int) -> Any:
    """asyncpg's parameter convention for the same value: json goes as text."""
    if oid in (114, 3802):
        return json.dumps(value)
    if oid in (199, 3807):
        return [None if v is None else json.dumps(v) for v in value]
    return value


@pytest.mark.parametrize("case", ROUNDTRIP, ids=[c.sql for c in ROUNDTRIP])
async def test_parameters_mean_what_they_mean_to_asyncpg(
    case: Case, raw: psycopg.Connection[Any], apg: asyncpg.Connection
) -> None:
    """The server reads our text for a value exactly as it reads asyncpg's binary for it."""
    oid, data = fetch_raw(raw, case.sql)
    value = decode(oid, data)
    type_name = _type_name(raw, oid)
    query = f"select $1::{type_name}::text"
    _, ours_text = _send(raw, query, *default_registry.encode(value, oid))
    if type_name in ("int2vector", "oidvector"):  # asyncpg cannot send these at all
        with pytest.raises(asyncpg.InvalidBinaryRepresentationError):
            await apg.fetchval(query, value)
        return
    expected = await apg.fetchval(query, _for_asyncpg(value, oid))
    assert (None if ours_text is None else ours_text.decode()) == expected
