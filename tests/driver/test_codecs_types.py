# mypy: disable-error-code="call-overload,arg-type"
# (asyncpg and driver exception classes reached by name here type as object for mypy)
"""asyncpg's value types and the codecs built on them, against the real cluster over TCP and
WebSocket, side by side with asyncpg where both can run the same code: ranges, multiranges,
composites, domains, enums, arrays of them, geometric types, bit strings, introspection
once per connection, set_type_codec() formats, and DataError for bad arguments."""

from __future__ import annotations

import itertools
from typing import Any

import asyncpg
import pytest

import driver
from driver.types import BitString, Box, Circle, Line, LineSegment, Path, Point, Polygon, Range
from tests.conftest import ProxyProcess
from tools.pgcluster import Cluster
from tools.relay import CountingRelay


@pytest.fixture
def con(dconn: driver.Connection) -> driver.Connection:
    return dconn


def test_range_matches_asyncpg_semantics() -> None:
    ranges = [
        (),
        (1, 5),
        (1, 5, True, True),
        (1, 5, False, True),
        (None, 3),
        (2, None),
        (None, None),
    ]

    def both(spec: tuple[Any, ...]) -> tuple[Range, asyncpg.Range]:
        if not spec:
            return Range(empty=True), asyncpg.Range(empty=True)
        low, high, *inc = spec
        kw = dict(zip(("lower_inc", "upper_inc"), inc, strict=False))
        return Range(low, high, **kw), asyncpg.Range(low, high, **kw)

    for a, b in itertools.product(ranges, repeat=2):
        ours_a, theirs_a = both(a)
        ours_b, theirs_b = both(b)
        assert ours_a.issubset(ours_b) is theirs_a.issubset(theirs_b), (a, b)
        assert ours_a.issuperset(ours_b) is theirs_a.issuperset(theirs_b), (a, b)
        assert (ours_a == ours_b) == (theirs_a == theirs_b)
    for spec in ranges:
        ours, theirs = both(spec)
        assert repr(ours) == repr(theirs)
        assert (ours.lower_inf, ours.upper_inf, ours.isempty, bool(ours)) == (
            theirs.lower_inf, theirs.upper_inf, theirs.isempty, bool(theirs),
        )  # fmt: skip
        assert hash(ours) == hash(Range(ours.lower, ours.upper, lower_inc=ours.lower_inc,
                                        upper_inc=ours.upper_inc, empty=ours.isempty))  # fmt: skip


def test_bitstring_matches_asyncpg() -> None:
    for text in ("", "1", "1010 1", "11110000", "101100111"):
        assert BitString(text).bytes == asyncpg.BitString(text).bytes
        assert len(BitString(text)) == len(asyncpg.BitString(text))
        assert repr(BitString(text)) == repr(asyncpg.BitString(text))
        for order in ("big", "little"):
            for signed in (False, True):
                assert BitString(text).to_int(order, signed=signed) == asyncpg.BitString(
                    text
                ).to_int(order, signed=signed)
    for x, n in ((5, 3), (-3, 4), (255, 12), (0, 0)):
        for order in ("big", "little"):
            ours = BitString.from_int(x, n, order, signed=x < 0)
            theirs = asyncpg.BitString.from_int(x, n, order, signed=x < 0)
            assert (ours.bytes, len(ours)) == (theirs.bytes, len(theirs))
    with pytest.raises(OverflowError):
        BitString.from_int(-1, 4)
    with pytest.raises(ValueError, match="invalid bit value"):
        BitString("102")


BUILTIN_CASES = [
    "SELECT int4range(1, 10)",
    "SELECT '(3,7]'::int8range",
    "SELECT 'empty'::numrange",
    "SELECT '[2020-01-01,)'::daterange",
    "SELECT tstzrange('2020-01-01 00:00+00', '2021-01-01 00:00+00')",
    "SELECT '{[1,3), [5,7)}'::int4multirange",
    "SELECT '{}'::int4multirange",
    "SELECT ARRAY[int4range(1,2), NULL]",
    "SELECT point(1.5, -2)",
    "SELECT '[(1,2),(3,4)]'::lseg",
    "SELECT '(3,4),(1,2)'::box",
    "SELECT '[(1,2),(3,4),(5,6)]'::path",
    "SELECT '((1,2),(3,4),(5,6))'::path",
    "SELECT '((0,0),(1,1),(1,0))'::polygon",
    "SELECT '{1,-1,0}'::line",
    "SELECT '<(1,2),3>'::circle",
    "SELECT B'10110'",
    "SELECT B'101'::varbit",
    "SELECT ARRAY['(1,1),(0,0)'::box, '(2,2),(1,1)'::box]",
]


@pytest.mark.parametrize("sql", BUILTIN_CASES)
async def test_builtin_types_decode_as_asyncpg(
    sql: str, con: driver.Connection, apg: asyncpg.Connection
) -> None:
    ours = await con.fetchval(sql)
    theirs = await apg.fetchval(sql)
    assert _plain(ours) == _plain(theirs)
    assert type(ours).__name__ == type(theirs).__name__


def _plain(value: Any) -> Any:
    """Values of asyncpg's and our types compared by content (the classes differ)."""
    if isinstance(value, Range | asyncpg.Range):
        return ("range", _plain(value.lower), _plain(value.upper), value.lower_inc,
                value.upper_inc, value.isempty)  # fmt: skip
    if isinstance(value, BitString | asyncpg.BitString):
        return ("bits", value.bytes, len(value))
    if isinstance(value, Path | asyncpg.Path):
        return ("path", tuple(map(tuple, value.points)), value.is_closed)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    return value


ROUND_TRIPS = [
    ("int4range", Range(1, 10)),
    ("int4range", Range(empty=True)),
    ("int4range", Range(None, 3)),
    ("int8range", Range(2, None)),
    ("int4multirange", [Range(1, 10), Range(20, 31)]),
    ("point", Point(1.5, 2)),
    ("lseg", LineSegment((1, 2), (3, 4))),
    ("box", Box((3, 4), (1, 2))),
    ("path", Path((1, 2), (3, 4), is_closed=True)),
    ("polygon", Polygon((0, 0), (1, 1), (1, 0))),
    ("line", Line(1, -1, 0)),
    ("circle", Circle((1, 2), 3)),
    ("varbit", BitString("10110")),
    ("bit(5)", BitString("10110")),
]


@pytest.mark.parametrize(("typename", "value"), ROUND_TRIPS)
async def test_values_round_trip_as_parameters(
    typename: str, value: Any, con: driver.Connection, apg: asyncpg.Connection
) -> None:
    sql = f"SELECT $1::{typename}"
    stmt = await con.prepare(sql)
    assert await stmt.fetchval(value) == value
    theirs = await apg.fetchval(sql, _to_asyncpg(value))
    assert _plain(await stmt.fetchval(value)) == _plain(theirs)
    if not isinstance(value, list):  # unprepared, a list is an array (the type is unknown)
        assert await con.fetchval(sql, value) == value


def _to_asyncpg(value: Any) -> Any:
    if isinstance(value, Range):
        return asyncpg.Range(value.lower, value.upper, lower_inc=value.lower_inc,
                             upper_inc=value.upper_inc, empty=value.isempty)  # fmt: skip
    if isinstance(value, list):
        return [_to_asyncpg(v) for v in value]
    if isinstance(value, BitString):
        return asyncpg.BitString.frombytes(value.bytes, len(value))
    if isinstance(value, Path):
        return getattr(asyncpg, type(value).__name__)(
            *value.points, **({"is_closed": value.is_closed} if type(value) is Path else {})
        )
    if isinstance(value, tuple) and type(value) is not tuple:
        return getattr(asyncpg, type(value).__name__)(*value)
    return value


async def test_user_types_are_introspected_once(
    con: driver.Connection, apg: asyncpg.Connection
) -> None:
    suffix = f"{id(con) % 100000}"
    comp, enum, dom, rng = (f"t_comp{suffix}", f"t_enum{suffix}", f"t_dom{suffix}",
                            f"t_rng{suffix}")  # fmt: skip
    await con.execute(f"""
        CREATE TYPE {enum} AS ENUM ('red', 'green');
        CREATE DOMAIN {dom} AS int CHECK (VALUE > 0);
        CREATE TYPE {comp} AS (a int, b text, c int[], e {enum}, d {dom});
        CREATE TYPE {rng} AS RANGE (subtype = float8);
    """)
    try:
        sql = (
            f"SELECT ROW(1, 'x y', ARRAY[1, NULL], 'red', 5)::{comp} AS c,"
            f" ARRAY['red', 'green']::{enum}[] AS es, 7::{dom} AS d,"
            f" {rng}(1.5, 2.5) AS r, ARRAY[ROW(NULL, '', NULL, NULL, NULL)::{comp}] AS cs"
        )
        row = await con.fetchrow(sql)
        theirs = await apg.fetchrow(sql)
        assert row is not None and theirs is not None
        assert tuple(row["c"]) == tuple(theirs["c"]) == (1, "x y", [1, None], "red", 5)
        assert row["c"]["b"] == "x y"
        assert row["es"] == theirs["es"] == ["red", "green"]
        assert row["d"] == theirs["d"] == 7
        assert _plain(row["r"]) == _plain(theirs["r"])
        assert [tuple(c) for c in row["cs"]] == [tuple(c) for c in theirs["cs"]]
        # parameters: composites by position or by name, enums, domains, user ranges
        value = await con.fetchval(f"SELECT $1::{comp}", (2, "q", [3], "green", 1))
        assert tuple(value) == (2, "q", [3], "green", 1)
        value = await con.fetchval(f"SELECT $1::{comp}", {"b": "n", "a": 4})
        assert tuple(value) == (4, "n", None, None, None)
        stmt = await con.prepare(f"SELECT $1::{rng}")
        assert await stmt.fetchval(Range(0.5, 1.0)) == Range(0.5, 1.0)
        with pytest.raises(driver.DataError, match="'bad' is not a valid element"):
            await stmt.connection.fetchval(f"SELECT $1::{comp}", {"bad": 1}) if hasattr(
                stmt, "connection") else await (await con.prepare(f"SELECT $1::{comp}")
                                                ).fetchval({"bad": 1})  # fmt: skip
        # reload_schema_state() drops them: after ALTER TYPE the new attribute shows
        await con.execute(f"ALTER TYPE {comp} ADD ATTRIBUTE z text")
        await con.reload_schema_state()
        value = await con.fetchval(f"SELECT ROW(1, 'x', NULL, NULL, NULL, 'zz')::{comp}")
        assert value["z"] == "zz"
    finally:
        await con.execute(f"DROP TYPE {comp}; DROP TYPE {rng}; DROP DOMAIN {dom};"
                          f" DROP TYPE {enum}")  # fmt: skip


async def test_introspection_costs_one_round_trip_once_per_connection(
    pg: Cluster, proxy: ProxyProcess, transport: str
) -> None:
    """Counted by a relay on the wire: a statement naming a new user type costs one catalog
    round trip more, the next statements naming it none, reload_schema_state() one again;
    statements over built-in types never do."""
    async with CountingRelay("127.0.0.1", proxy.port if transport == "ws" else pg.port) as relay:
        args: dict[str, Any] = {"sslmode": "disable"}
        if transport == "ws":
            args.update(ws_proxy=f"127.0.0.1:{relay.port}/v2", use_secure_websocket=False)
        else:
            args.update(port=relay.port)
        con = await driver.connect(pg.dsn("trust_user"), **args)
        try:
            await con.execute(
                "CREATE TYPE pg_temp.rt_enum AS ENUM ('a');"
                " CREATE TYPE pg_temp.rt_comp AS (e pg_temp.rt_enum, n int)"
            )
            counted = relay.last()

            async def trips(sql: str) -> int:
                before = counted.round_trips
                await con.fetchrow(sql)
                return counted.round_trips - before

            assert await trips("SELECT 1::int4, 'x'::text, now()") == 1
            sql = "SELECT ROW('a', 1)::pg_temp.rt_comp AS c, ARRAY['a']::pg_temp.rt_enum[]"
            assert await trips(sql) == 2
            assert await trips(sql + " AS again") == 1
            assert await trips("SELECT 'a'::pg_temp.rt_enum") == 1
            await con.reload_schema_state()
            assert await trips(sql + " AS after_reload") == 2
            row = await con.fetchrow(sql)
            assert row is not None and tuple(row[0]) == ("a", 1) and row[1] == ["a"]
        finally:
            await con.close()


async def test_bad_parameter_values_raise_data_error_as_asyncpg(
    con: driver.Connection, apg: asyncpg.Connection
) -> None:
    for c in (con, apg):
        stmt = await c.prepare("SELECT $1::int4range")
        with pytest.raises((driver.DataError, asyncpg.DataError),
                           match=r"invalid input for query argument \$1: 'aa' \(list, tuple or "
                                 r"Range object expected"):  # fmt: skip
            await stmt.fetchval("aa")
        with pytest.raises((driver.DataError, asyncpg.DataError),
                           match="expected 0, 1 or 2 elements"):  # fmt: skip
            await stmt.fetchval((0, 2, 3))
        await c.execute("CREATE TEMP TABLE IF NOT EXISTS em (r int4range)")
        with pytest.raises((driver.DataError, asyncpg.DataError),
                           match=r"invalid input for query argument \$1 in element #1 of "
                                 r"executemany\(\) sequence: 'bad'"):  # fmt: skip
            insert = await c.prepare("INSERT INTO em VALUES ($1::int4range)")
            await insert.executemany([((1, 2),), ("bad",)])
    with pytest.raises(driver.InterfaceError, match="cannot exceed 32767"):
        await con.fetchval("SELECT 1", *range(40000))
    assert await con.fetchval("SELECT 1") == 1  # nothing was sent, the connection is fine
    anonymous = r"query argument \$1: input of anonymous composite types"
    with pytest.raises(driver.UnsupportedClientFeatureError, match=anonymous):
        await (await con.prepare("SELECT (1, 'foo') = $1")).fetchval((1, "foo"))


async def test_set_type_codec_formats(con: driver.Connection) -> None:
    await con.execute("CREATE TYPE pg_temp.pair AS (a int, b text)")
    schema = await con.fetchval("SELECT nspname FROM pg_namespace WHERE oid = pg_my_temp_schema()")
    await con.set_type_codec(
        "pair", schema=schema, format="tuple",
        encoder=lambda d: (d["a"], d["b"]), decoder=lambda t: {"a": t[0], "b": t[1]},
    )  # fmt: skip
    assert await con.fetchval("SELECT ROW(1, 'x')::pg_temp.pair") == {"a": 1, "b": "x"}
    assert await con.fetchval("SELECT $1::pg_temp.pair", {"a": 2, "b": "y"}) == {"a": 2, "b": "y"}
    await con.reset_type_codec("pair", schema=schema)
    assert tuple(await con.fetchval("SELECT ROW(1, 'x')::pg_temp.pair")) == (1, "x")
    await con.set_type_codec("int4", schema="pg_catalog", encoder=str,
                             decoder=lambda s: f"<{s}>")  # fmt: skip
    assert await con.fetchval("SELECT 5::int4") == "<5>"
    await con.reset_type_codec("int4", schema="pg_catalog")
    assert await con.fetchval("SELECT 5::int4") == 5
    with pytest.raises(driver.InterfaceError, match="binary"):
        await con.set_type_codec("int4", schema="pg_catalog", encoder=str, decoder=str,
                                 format="binary")  # fmt: skip
    await con.execute("CREATE TYPE pg_temp.level AS ENUM ('1', '2')")
    assert await con.fetchval("SELECT '2'::pg_temp.level") == "2"
    await con.set_builtin_type_codec("level", schema=schema, codec_name="int4")
    assert await con.fetchval("SELECT '2'::pg_temp.level") == 2


async def test_domain_over_an_array_takes_a_nested_sequence(con: driver.Connection) -> None:
    await con.execute("CREATE DOMAIN pg_temp.nums AS numeric[]")
    await con.execute("CREATE TEMP TABLE dom_t (num pg_temp.nums)")
    await con.execute("INSERT INTO dom_t (num) VALUES ($1)", ([1, 2],))
    assert await con.fetchval("SELECT num FROM dom_t") == [[1, 2]]


async def test_arrays_of_tuple_valued_types_and_iterables(
    con: driver.Connection, apg: asyncpg.Connection
) -> None:
    for c in (con, apg):
        await c.execute("CREATE TYPE pg_temp.kv AS (k text, v int)")
        # a tuple is an element, not a nesting level, when the element is a composite
        rows = await c.fetchval("SELECT $1::pg_temp.kv[]", [("a", 1)])
        assert [tuple(r) for r in rows] == [("a", 1)]
    points = await con.fetchval("SELECT $1::point[]", [Point(1, 2), (3, 4)])
    assert points == [Point(1, 2), Point(3, 4)]
    assert await con.fetchval("SELECT $1::int4[]", range(1, 3)) == [1, 2]
    assert await apg.fetchval("SELECT $1::int4[]", range(1, 3)) == [1, 2]
    stmt = await con.prepare("SELECT $1::int2")
    with pytest.raises(driver.DataError, match=r"\$1: 32768 \(value out of int16 range\)"):
        await stmt.fetchval(32768)
    astmt = await apg.prepare("SELECT $1::int2")
    with pytest.raises(asyncpg.DataError, match="value out of int16 range"):
        await astmt.fetchval(32768)


async def test_hstore_domains_and_builtin_tuple_formats(con: driver.Connection) -> None:
    await con.execute("CREATE DOMAIN pg_temp.posint AS int CHECK (VALUE > 0)")
    schema = await con.fetchval("SELECT nspname FROM pg_namespace WHERE oid = pg_my_temp_schema()")
    with pytest.raises(driver.UnsupportedClientFeatureError, match="domain types"):
        await con.set_type_codec("posint", schema=schema, encoder=str, decoder=int)
    await con.execute("CREATE TYPE pg_temp.pair2 AS (a int)")
    with pytest.raises(driver.UnsupportedClientFeatureError, match="only tuple-format"):
        await con.set_type_codec("pair2", schema=schema, encoder=str, decoder=str)
    await con.set_type_codec(
        "interval", schema="pg_catalog", format="tuple", encoder=tuple, decoder=tuple
    )
    assert await con.fetchval("SELECT $1::interval", (2, 3, 1)) == (2, 3, 1)
    await con.reset_type_codec("interval", schema="pg_catalog")
    await con.set_type_codec("date", schema="pg_catalog", format="tuple", encoder=tuple,
                             decoder=tuple)  # fmt: skip
    assert await con.fetchval("SELECT '2000-01-04'::date") == (3,)
    assert await con.fetchval("SELECT $1::date::text", (2**31 - 1,)) == "infinity"
    await con.reset_type_codec("date", schema="pg_catalog")
    has_hstore = await con.fetchval(
        "SELECT count(*) FROM pg_available_extensions WHERE name = 'hstore'"
    )
    assert has_hstore == 1, "the test cluster ships contrib's hstore"
    from driver.codecs.structured import decode_hstore, encode_hstore

    text = encode_hstore({"a": "1", "b": None, 'q"': "x\\y"})
    assert decode_hstore(text.encode()) == {"a": "1", "b": None, 'q"': "x\\y"}


async def test_altered_composite_is_relearnt_as_asyncpg(
    con: driver.Connection, apg: asyncpg.Connection
) -> None:
    for c, outdated in ((con, driver.OutdatedSchemaCacheError),
                        (apg, asyncpg.OutdatedSchemaCacheError)):  # fmt: skip
        await c.execute("CREATE TYPE pg_temp.t3 AS (x int, y int)")
        await c.execute("CREATE TEMP TABLE tab3 (a int, b pg_temp.t3)")
        await c.execute("INSERT INTO tab3 VALUES (1, (2, 3))")
        assert await c.fetchrow("SELECT * FROM tab3") == (1, (2, 3))
        await c.execute("ALTER TYPE pg_temp.t3 ADD ATTRIBUTE c text")
        with pytest.raises(outdated, match="unexpected number of attributes"):
            await c.fetchrow("SELECT * FROM tab3")
        assert await c.fetchrow("SELECT * FROM tab3") == (1, (2, 3, None))
        async with c.transaction():
            await c.execute("ALTER TYPE pg_temp.t3 ADD ATTRIBUTE d text")
            with pytest.raises(outdated, match="unexpected number of attributes"):
                await c.fetchrow("SELECT * FROM tab3")
            assert await c.fetchrow("SELECT * FROM tab3") == (1, (2, 3, None, None))
