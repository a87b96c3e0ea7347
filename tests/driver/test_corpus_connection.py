"""Issue 2's corpus acceptance through driver.connect(), over TCP and over the WebSocket proxy.

test_codecs_corpus.py checks the codecs on bytes fetched by psycopg; here the same corpus goes
through the whole driver (Parse/Bind/Execute, RowDescription, the statement cache, records,
the WebSocket framing), and asyncpg on the same server is the reference: every value comes
back as asyncpg returns it (json compared after parsing) and goes back as a parameter.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

import driver
from tests.driver.codec_corpus import CASES, TIMEZONES, Case, from_asyncpg, same
from tests.driver.conftest import TRANSPORTS, ConnectArgs
from tools.pgcluster import Cluster

ROUNDTRIP = [c for c in CASES if c.roundtrip]
INFERRED = [c for c in ROUNDTRIP if c.infer]
TEMPORAL = [c.sql for c in CASES if any(w in c.sql for w in ("time", "date", "interval"))]
JSON_OIDS = {114: False, 3802: False, 199: True, 3807: True}  # oid -> is an array
_BOUNDS = "a Python list (asyncpg's too) has no lower bounds"
_INFINITY = "date(time).min/max are sent as -infinity/infinity, asyncpg's convention"
_MONTHS = "a timedelta month is 30 days and a year 365 (asyncpg's too); the server's year is 360"
# Values the driver returns as asyncpg does, and that come back equal as Python values, but
# that the server then holds for a different value than the original.
LOSSY = {
    "'[0:2]={1,2,3}'::int4[]": _BOUNDS,
    "'[-1:0][2:3]={{1,2},{3,4}}'::int2[]": _BOUNDS,
    "'0001-01-01'::date": _INFINITY,
    "'9999-12-31'::date": _INFINITY,
    "'0001-01-01 00:00:00'::timestamp": _INFINITY,
    "'9999-12-31 23:59:59.999999'::timestamp": _INFINITY,
    "'1 year'::interval": _MONTHS,
    "'1 year 2 mons 3 days 04:05:06.789'::interval": _MONTHS,
    "'-1 year -2 mons +3 days -04:05:06.789'::interval": _MONTHS,
    "'-13 mons'::interval": _MONTHS,
    "'2000000 years'::interval": _MONTHS,
}
NO_ASYNCPG_ENCODER = {"int2vector", "oidvector"}  # asyncpg cannot send these as parameters


def _ids(cases: list[Case]) -> list[str]:
    return [c.sql for c in cases]


@pytest.fixture(scope="module")
async def apg(pg: Cluster) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(pg.dsn("trust_user"), ssl=False)
    await conn.execute("set timezone to 'UTC'")
    yield conn
    await conn.close()


@pytest.fixture(scope="module", params=TRANSPORTS)
async def dconn(
    request: pytest.FixtureRequest, connect_args: ConnectArgs
) -> AsyncIterator[driver.Connection]:
    """One driver connection per transport for the whole module (in UTC, like ``apg``)."""
    conn = await driver.connect(**connect_args("trust_user", str(request.param)))
    await conn.execute("set timezone to 'UTC'")
    yield conn
    await conn.close()


@pytest.fixture(scope="module")
async def types(apg: asyncpg.Connection) -> dict[str, tuple[int, str]]:
    """Per corpus expression, its result type: OID and a name usable in a cast (``_int4``)."""
    out = {}
    for case in CASES:
        oid = (await apg.prepare(f"select {case.sql}")).get_attributes()[0].type.oid
        name = await apg.fetchval("select quote_ident(typname) from pg_type where oid = $1", oid)
        out[case.sql] = (oid, name)
    return out


async def reference(apg: asyncpg.Connection, sql: str, oid: int) -> Any:
    return from_asyncpg(await apg.fetchval(f"select {sql}"), oid)


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
async def test_value_matches_asyncpg(
    case: Case, dconn: driver.Connection, apg: asyncpg.Connection,
    types: dict[str, tuple[int, str]],
) -> None:  # fmt: skip
    """Three paths: first execution (Parse + Describe), the cached statement, prepare()."""
    oid, _ = types[case.sql]
    expected = await reference(apg, case.sql, oid)
    query = f"select {case.sql}"
    first, cached = await dconn.fetchval(query), await dconn.fetchval(query)
    stmt = await dconn.prepare(query)
    assert stmt.get_attributes()[0].type.oid == oid
    prepared = await stmt.fetchval()
    await stmt.close()
    for path, got in (("first", first), ("cached", cached), ("prepare", prepared)):
        assert same(got, expected), f"{path}: driver {got!r} != asyncpg {expected!r}"


async def test_whole_corpus_in_one_row(dconn: driver.Connection, apg: asyncpg.Connection) -> None:
    """159 columns of every type in one DataRow (over 17 kB: several WebSocket reads), three
    times, decoded into records whose names, order and values match asyncpg's."""
    await _check_whole_corpus(dconn, apg)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_whole_corpus_in_one_row_over_postgres_tls(
    transport: str, connect_args: ConnectArgs, pg: Cluster, apg: asyncpg.Connection
) -> None:
    """The same row through TLS records (16 kB at most each) over TCP and over the WebSocket."""
    assert pg.certs is not None
    args = connect_args("scram_user", transport, sslmode="verify-full",
                        sslrootcert=str(pg.certs.ca_cert))  # fmt: skip
    async with await driver.connect(**args) as conn:
        await conn.execute("set timezone to 'UTC'")
        assert await conn.fetchval("select ssl from pg_stat_ssl where pid = pg_backend_pid()")
        await _check_whole_corpus(conn, apg)


async def _check_whole_corpus(conn: driver.Connection, apg: asyncpg.Connection) -> None:
    cols = ", ".join(f"{c.sql} as c{i}" for i, c in enumerate(CASES))
    query = f"select {cols} from generate_series(1, 3) g"
    theirs = await apg.fetch(query)
    oids = [a.type.oid for a in (await apg.prepare(query)).get_attributes()]
    rows = await conn.fetch(query)
    assert len(rows) == 3
    for row, ref in zip(rows, theirs, strict=True):
        assert len(row) == len(CASES) and list(row.keys()) == list(ref.keys())
        mismatches = [
            (CASES[i].sql, got, want)
            for i, (got, want) in enumerate(zip(row.values(), ref.values(), strict=True))
            if not same(got, from_asyncpg(want, oids[i]))
        ]
        assert not mismatches
        assert same(row["c2"], True) and same(row.get("c0"), None)


@pytest.mark.parametrize("tz", TIMEZONES)
async def test_temporal_values_match_asyncpg_in_every_timezone(
    tz: str, dconn: driver.Connection, apg: asyncpg.Connection,
    types: dict[str, tuple[int, str]],
) -> None:  # fmt: skip
    await dconn.execute(f"set timezone to '{tz}'")
    await apg.execute(f"set timezone to '{tz}'")
    try:
        assert dconn.server_parameters["TimeZone"] == tz  # ParameterStatus was tracked
        mismatches = []
        for sql in TEMPORAL:
            got = await dconn.fetchval(f"select {sql}")
            expected = await reference(apg, sql, types[sql][0])
            if not same(got, expected):
                mismatches.append((sql, got, expected))
        assert not mismatches
        assert len(TEMPORAL) > 40
    finally:
        await dconn.execute("set timezone to 'UTC'")
        await apg.execute("set timezone to 'UTC'")


# -- every value back to the server as a parameter -------------------------------------------


@pytest.mark.parametrize("case", INFERRED, ids=_ids(INFERRED))
async def test_value_round_trips_with_inferred_parameter_type(
    case: Case, dconn: driver.Connection, types: dict[str, tuple[int, str]]
) -> None:
    """fetch*(query, *args) declares parameter types from the Python values (one flight, no
    Describe round trip); the server casts them to the column type."""
    _, name = types[case.sql]
    value = await dconn.fetchval(f"select {case.sql}")
    back = await dconn.fetchval(f"select $1::{name}", value)
    assert same(back, value), (value, back)
    # The server itself finds it equal to the original, except where the Python value cannot
    # say it (LOSSY). json and jsonpath have no "=" operator: compare them as jsonb and text.
    cmp = {"json": "jsonb", "_json": "_jsonb", "jsonpath": "text"}.get(name, name)
    query = f"select $1::{name}::{cmp} is not distinct from ({case.sql})::{cmp}"
    assert await dconn.fetchval(query, value) is (case.sql not in LOSSY)


NOT_INFERRED = [c for c in ROUNDTRIP if not c.infer]


@pytest.mark.parametrize("case", NOT_INFERRED, ids=_ids(NOT_INFERRED))
async def test_uninferable_value_is_refused_or_right_never_wrong(
    case: Case, dconn: driver.Connection, types: dict[str, tuple[int, str]]
) -> None:
    """Where the Python type names no type castable to the column's ("char" as bytes, a JSON
    array as a list), the one-flight path may fail, with the server's typed error, but must
    never hand back a different value; and the connection stays usable."""
    _, name = types[case.sql]
    value = await dconn.fetchval(f"select {case.sql}")
    try:
        back = await dconn.fetchval(f"select $1::{name}", value)
    except driver.PostgresError as exc:
        assert str(exc.sqlstate)[:2] in ("42", "22"), exc  # a type mismatch or an invalid input
    else:
        assert same(back, value), (value, back)
    assert await dconn.fetchval("select 1") == 1


@pytest.mark.parametrize("case", ROUNDTRIP, ids=_ids(ROUNDTRIP))
async def test_value_round_trips_through_a_prepared_statement(
    case: Case, dconn: driver.Connection, apg: asyncpg.Connection,
    types: dict[str, tuple[int, str]],
) -> None:  # fmt: skip
    """prepare() knows the parameter types, so even values whose Python type names no castable
    type ("char" as bytes, a JSON array as a list) go as their column type; and the server
    reads the parameter exactly as it reads asyncpg's for the same value."""
    oid, name = types[case.sql]
    value = await dconn.fetchval(f"select {case.sql}")
    stmt = await dconn.prepare(f"select $1::{name} as v, $1::{name}::text as t")
    assert [t.oid for t in stmt.get_parameters()] == [oid]
    row = await stmt.fetchrow(value)
    await stmt.close()
    assert row is not None and same(row["v"], value), (value, row)
    if name in NO_ASYNCPG_ENCODER:
        expected = await apg.fetchval(f"select ({case.sql})::text")
    else:
        expected = await apg.fetchval(f"select $1::{name}::text", _for_asyncpg(value, oid))
    assert row["t"] == expected


async def test_executemany_and_copy_store_every_inferable_value(
    dconn: driver.Connection, types: dict[str, tuple[int, str]]
) -> None:
    """A table with one column per corpus type, filled by executemany and by
    copy_records_to_table (COPY text format), reads back equal to the original values."""
    cols = [(f"c{i}", types[c.sql][1]) for i, c in enumerate(INFERRED)]
    await dconn.execute(
        "create temp table t_corpus (" + ", ".join(f"{n} {t}" for n, t in cols) + ")"
    )
    try:
        row = await dconn.fetchrow("select " + ", ".join(c.sql for c in INFERRED))
        assert row is not None
        values = tuple(row)
        marks = ", ".join(f"${i + 1}" for i in range(len(values)))
        await dconn.executemany(f"insert into t_corpus values ({marks})", [values, values])
        tag = await dconn.copy_records_to_table("t_corpus", records=[values] * 3)
        assert tag == "COPY 3"
        stored = await dconn.fetch("select * from t_corpus")
        assert len(stored) == 5
        for got in stored:
            mismatches = [
                (INFERRED[i].sql, g, v)
                for i, (g, v) in enumerate(zip(got, values, strict=True))
                if not same(g, v)
            ]
            assert not mismatches
    finally:
        await dconn.execute("drop table t_corpus")


def _for_asyncpg(value: Any, oid: int) -> Any:
    """asyncpg's parameter convention for the same value: json goes as text."""
    if oid not in JSON_OIDS:
        return value
    if JSON_OIDS[oid]:
        return [None if v is None else json.dumps(v) for v in value]
    return json.dumps(value)


def test_the_lossy_list_names_corpus_cases() -> None:
    """A renamed corpus case must not silently drop out of LOSSY (it would then fail above)."""
    assert set(LOSSY) <= {c.sql for c in INFERRED}
    assert len(INFERRED) > 120 and len(ROUNDTRIP) == len(CASES) - 2
