"""The C loops of the row path (driver/_speedups.c) give what the Python loops give.

The Python forms (``_rows`` in driver/protocol/buffer.py, the row decoders of
driver/query.py) are the reference: same rows, same record classes, same errors, for any
input, valid or not; and a whole fetch from the cluster, with the C loops and without them.
"""

from __future__ import annotations

import gc
import os
import struct
import sys
import weakref
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import driver
from driver import speedups
from driver.codecs import default_registry, oids
from driver.errors import DataError, ProtocolError
from driver.protocol import messages as m
from driver.protocol.backend import Field
from driver.protocol.buffer import ReceiveBuffer, _rows
from driver.query import _row_decoder, decode
from driver.record import Record, record_class
from driver.statement import Statement
from tests.driver import fakes as f
from tests.driver.conftest import ConnectArgs

Raw = list[tuple[bytes | None, ...]]
PURE = os.environ.get("PGWS_PURE_PYTHON", "") not in ("", "0")
c = pytest.mark.skipif(PURE, reason="PGWS_PURE_PYTHON is set: the C loops are not loaded")


def test_the_c_loops_are_built_and_loaded() -> None:
    """The suite must run the C loops where it can build them (bootstrap installs gcc)."""
    if PURE:
        assert speedups.read_rows is None and speedups.decode_rows is None
    else:
        assert speedups.read_rows is not None and speedups.decode_rows is not None
        assert speedups.read_rows.__module__ == "driver._speedups"


def _c_read(buf: bytes, pos: int = 0) -> tuple[Raw, int | str]:
    assert speedups.read_rows is not None
    rows: Raw = []
    try:
        return rows, speedups.read_rows(buf, pos, rows)
    except ValueError as exc:
        return rows, f"error: {exc}"


def _py_read(buf: bytes, pos: int = 0) -> tuple[Raw, int | str]:
    rows: Raw = []
    try:
        return rows, _rows(buf, pos, len(buf), rows.append)
    except ProtocolError as exc:
        return rows, f"error: {exc}"
    except struct.error:  # a length word off the end of the input: also an error
        return rows, "error: DataRow length does not match its values"


values = st.one_of(st.none(), st.binary(max_size=40))
rows_strategy = st.lists(st.lists(values, max_size=40).map(tuple), max_size=30)


@c
@settings(max_examples=300, deadline=None)
@given(rows=rows_strategy, tail=st.binary(max_size=12), cut=st.integers(0, 10_000))
def test_framing_is_the_same(rows: Raw, tail: bytes, cut: int) -> None:
    """Whole rows, then anything (another message), cut anywhere (a row not all here): same
    rows, same end."""
    full = b"".join(f.data_row(*r) for r in rows) + tail
    wire = full[:cut]
    got, expected = _c_read(wire), _py_read(wire)
    assert got == expected
    if isinstance(expected[1], int) and not tail and wire == full:
        assert got[0] == rows


@c
@settings(max_examples=500, deadline=None)
@given(
    rows=st.lists(st.lists(values, min_size=1, max_size=6).map(tuple), min_size=1, max_size=4),
    where=st.integers(0, 10_000),
    byte=st.integers(0, 255),
)
def test_corrupt_rows_fail_alike(rows: Raw, where: int, byte: int) -> None:
    """One byte changed anywhere: the same rows before the damage, and both refuse (or both
    read on, where the change is one that leaves a valid stream)."""
    wire = bytearray(b"".join(f.data_row(*r) for r in rows))
    wire[where % len(wire)] = byte
    got, expected = _c_read(bytes(wire)), _py_read(bytes(wire))
    assert got[0] == expected[0]
    assert isinstance(got[1], str) == isinstance(expected[1], str)
    if not isinstance(expected[1], str):
        assert got[1] == expected[1]


@pytest.mark.parametrize("pure", [False, True], ids=["c", "python"])
@pytest.mark.parametrize(
    ("wire", "error"),
    [
        (f.msg(b"D", struct.pack("!Hi", 1, -5)), "DataRow value length -5"),
        (f.msg(b"D", struct.pack("!Hi", 1, 9) + b"abc"), "does not match its values"),
        (f.msg(b"D", struct.pack("!Hi", 1, 1) + b"ab"), "does not match its values"),
        (b"D" + struct.pack("!IH", 2**31, 1), "invalid length 2147483648 for a DataRow"),
    ],
    ids=["negative length", "value past the end", "bytes left over", "absurd length"],
)
def test_malformed_rows_are_protocol_errors(
    wire: bytes, error: str, pure: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if pure:
        monkeypatch.setattr(speedups, "read_rows", None)
    elif PURE:
        pytest.skip("PGWS_PURE_PYTHON is set: the C loops are not loaded")
    buf = ReceiveBuffer()
    buf.feed(f.data_row(b"1") + wire)
    rows: Raw = []
    with pytest.raises(ProtocolError, match=error):
        buf.read_data_rows(rows)
    assert rows == [(b"1",)]  # the good row before it was read


def _bad_decoder(data: bytes) -> Any:
    if data == b"bad":
        raise ValueError("not this one")
    return data.decode()


DECODERS: list[Callable[[bytes], Any]] = [
    int,
    bytes.decode,
    _bad_decoder,
    lambda b: [b],
    lambda b: Decimal(b.decode()),
    float,
    bytes,
]


class MyRecord(Record):
    pass


@c
@settings(max_examples=200, deadline=None)
@given(
    width=st.integers(0, 40),
    data=st.data(),
    base=st.sampled_from([Record, MyRecord]),
)
def test_decoding_is_the_same(width: int, data: st.DataObject, base: type[Record]) -> None:
    cells = st.one_of(st.none(), st.sampled_from([b"1", b"-7", b"bad", b"2.5", b"x", b""]))
    raw: Raw = data.draw(st.lists(st.tuples(*[cells] * width), max_size=20))
    decoders = tuple(data.draw(st.sampled_from(DECODERS)) for _ in range(width))
    cls = record_class(tuple(f"c{i}" for i in range(width)), base)
    assert speedups.decode_rows is not None

    def run(fn: Callable[[], list[Any]]) -> tuple[str, Any]:
        try:
            out = fn()
        except Exception as exc:  # the same exception, whatever it is
            return "raised", (type(exc), str(exc))
        return "ok", [(type(r), tuple(r), [type(v) for v in r]) for r in out]

    got = run(lambda: speedups.decode_rows(raw, cls, decoders))  # type: ignore[misc]
    if 0 < width <= 32:
        expected = run(lambda: _row_decoder(width)(raw, cls, list(decoders)))
    else:
        expected = run(lambda: [cls(tuple(None if v is None else d(v)
                                          for d, v in zip(decoders, row, strict=True)))
                                for row in raw])  # fmt: skip
    assert got == expected


@pytest.mark.parametrize("pure", [False, True], ids=["c", "python"])
@pytest.mark.parametrize("width", [3, 40])
def test_a_row_of_the_wrong_width_is_an_interface_error(
    pure: bool, width: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    if pure:
        monkeypatch.setattr(speedups, "decode_rows", None)
    stmt = Statement("s", "", ())
    stmt.set_fields(
        tuple(Field(f"c{i}", 0, 0, 25, 0, 0, 0) for i in range(width)), lambda oid: bytes.decode
    )
    with pytest.raises(driver.InterfaceError, match=f"the {width} values"):
        decode(stmt, [(b"a",) * width, (b"a",) * (width - 1)])


@c
def test_rows_of_plain_values_are_not_tracked_and_cycles_are_still_collected() -> None:
    """The C loops leave rows of untracked values out of the collector (as CPython does for
    such tuples); a row holding a container stays tracked, so a cycle through it is freed."""
    assert speedups.read_rows is not None and speedups.decode_rows is not None
    raw: Raw = []
    speedups.read_rows(f.data_row(b"1", None) + f.data_row(b"2", b"x"), 0, raw)
    assert raw == [(b"1", None), (b"2", b"x")] and not any(map(gc.is_tracked, raw))
    cls = record_class(("n", "v"))
    plain = speedups.decode_rows(raw, cls, (int, bytes))
    assert [tuple(r) for r in plain] == [(1, None), (2, b"x")]
    assert not any(map(gc.is_tracked, plain)) and type(plain[0]) is cls

    class Box(list[Any]):
        pass

    holder = speedups.decode_rows(raw[1:], cls, (int, lambda b: Box([b])))
    row = holder[0]
    assert gc.is_tracked(row)
    box = row[1]
    box.append(row)  # row -> box -> row: a cycle only the collector can free
    alive = weakref.ref(box)
    del holder, row, box
    gc.collect()
    assert alive() is None


@c
def test_no_reference_is_leaked() -> None:
    assert speedups.read_rows is not None and speedups.decode_rows is not None
    wire = b"".join(f.data_row(b"%d" % i, None, b"text") for i in range(1000))
    cls = record_class(("a", "b", "c"))
    decoders = (int, bytes.decode, bytes.decode)

    def once() -> None:
        raw: Raw = []
        assert speedups.read_rows is not None and speedups.decode_rows is not None
        speedups.read_rows(wire, 0, raw)
        assert len(speedups.decode_rows(raw, cls, decoders)) == 1000
        with pytest.raises(ValueError):
            speedups.decode_rows([*raw, (b"x", None, None)], cls, decoders)

    once()
    counts = sys.getrefcount(cls), sys.getrefcount(None), sys.getrefcount(int)
    blocks = sys.getallocatedblocks()
    for _ in range(20):
        once()
    assert (sys.getrefcount(cls), sys.getrefcount(None), sys.getrefcount(int)) == counts
    assert sys.getallocatedblocks() - blocks < 200  # not 20 x 1000 rows kept


@pytest.fixture(params=["c", "python"])
def loops(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test with the C loops, then with the Python loops."""
    if request.param == "python":
        for name in ("read_rows", "decode_rows", "bind_row"):
            monkeypatch.setattr(speedups, name, None)
    elif PURE:
        pytest.skip("PGWS_PURE_PYTHON is set: the C loops are not loaded")
    return str(request.param)


QUERY = """
select i, 'row ' || i as t, i * 1.25::float8 as f,
       timestamptz '2020-01-01 00:00:00+00' + i * interval '1.5 s' as ts,
       (i / 100.0)::numeric as n, i % 3 = 0 as b,
       case when i % 7 = 0 then null else array[i, i + 1] end as a,
       jsonb_build_object('i', i) as j, row(i, 'x') as r
from generate_series(1, 3000) as i
"""
WIDE = (
    "select " + ", ".join(f"i + {k} as c{k}" for k in range(40)) + " from generate_series(1, 500) i"
)


async def _fetch_all(connect_args: ConnectArgs, transport: str) -> list[list[Any]]:
    conn = await driver.connect(**connect_args("scram_user", transport))
    try:
        rows = await conn.fetch(QUERY)
        async with conn.transaction():
            seen = [r async for r in conn.cursor(QUERY, prefetch=700)]
        return [rows, seen, await conn.fetch(WIDE), await (await conn.prepare(QUERY)).fetch()]
    finally:
        await conn.close()


@c
async def test_a_fetch_gives_the_same_rows_either_way(
    connect_args: ConnectArgs, transport: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast = await _fetch_all(connect_args, transport)
    monkeypatch.setattr(speedups, "read_rows", None)
    monkeypatch.setattr(speedups, "decode_rows", None)
    slow = await _fetch_all(connect_args, transport)
    for a, b in zip(fast, slow, strict=True):
        assert [(type(r), list(r.items())) for r in a] == [(type(r), list(r.items())) for r in b]
    rows = fast[0]
    assert len(rows) == 3000 and fast[1] == rows and fast[3] == rows
    seventh = rows[6]
    assert tuple(seventh)[:7] == (
        7, "row 7", 8.75, seventh["ts"], Decimal("0.07"), False, None
    )  # fmt: skip
    assert rows[0]["a"] == [1, 2] and rows[0]["r"][1] == "x" and rows[0]["j"] == {"i": 1}
    assert [tuple(r) for r in fast[2]] == [tuple(i + k for k in range(40)) for i in range(1, 501)]


def _encoders_for(oids_: list[int]) -> tuple[tuple[Any, ...], list[Callable[[Any], bytes]]]:
    codecs = default_registry.copy()
    return (
        tuple(codecs.param_text_encoder(o) for o in oids_),
        [codecs.param_encoder(o) for o in oids_],
    )


PARAMS = [  # (parameter OID, values of it, some of them refused by its encoder)
    (oids.INT4, st.one_of(st.integers(-(2**31), 2**31 - 1), st.integers(2**31, 2**40))),
    (oids.TEXT, st.text(max_size=20)),
    (oids.FLOAT8, st.floats(allow_nan=False)),
    (oids.NUMERIC, st.decimals(allow_nan=False, places=3)),
    (oids.BOOL, st.booleans()),
    (oids.TIMESTAMPTZ, st.datetimes(timezones=st.just(UTC))),
    (oids.JSONB, st.dictionaries(st.text(max_size=3), st.integers(), max_size=2)),
    (0, st.one_of(st.integers(), st.text(max_size=5), st.booleans())),  # inferred
    (oids.INT4, st.text(max_size=3)),  # a str for an int4: refused
]


@c
@settings(max_examples=300, deadline=None)
@given(data=st.data(), name=st.sampled_from(["", "__pgws_7"]))
def test_bind_rows_are_the_same(data: st.DataObject, name: str) -> None:
    """bind_row() gives bind_executor()'s bytes for the row the Python encoders make, and
    fails where they fail."""
    picked = data.draw(st.lists(st.sampled_from(PARAMS), min_size=1, max_size=8))
    row = data.draw(st.tuples(*[st.one_of(st.none(), values) for _, values in picked]))
    text_encoders, encoders = _encoders_for([oid for oid, _ in picked])
    fixed, head, tail = m.bind_execute_frame(name, len(picked))
    assert speedups.bind_row is not None
    try:
        expected: Any = m.bind_executor(name, len(picked))(
            [None if v is None else e(v) for e, v in zip(encoders, row, strict=True)]
        )
    except Exception as exc:  # whatever the encoder raises
        expected = type(exc)
    try:
        got: Any = speedups.bind_row(fixed, head, tail, text_encoders, row)
    except Exception as exc:
        got = type(exc)
    assert got == expected
    with pytest.raises(ValueError, match="a row of"):
        speedups.bind_row(fixed, head, tail, text_encoders, (*row, None))


async def test_executemany_gives_the_same_rows_and_errors_either_way(
    loops: str, connect_args: ConnectArgs, transport: str
) -> None:
    rows = [
        (i, f"row {i} é", i * 1.25, datetime(2020, 1, 1, tzinfo=UTC) + timedelta(seconds=i),
         Decimal(i) / 100, i % 3 == 0, None if i % 5 else {"i": i})
        for i in range(3000)
    ]  # fmt: skip
    conn = await driver.connect(**connect_args("scram_user", transport))
    try:
        await conn.execute(
            "create temp table many (i int4, t text, f float8, ts timestamptz, n numeric,"
            " b bool, j jsonb)"
        )
        await conn.executemany("insert into many values ($1, $2, $3, $4, $5, $6, $7)", rows)
        back = await conn.fetch("select * from many order by i")
        with pytest.raises(DataError, match="element #3 of executemany"):  # a str for an int4
            await conn.executemany("insert into many (i) values ($1)", [(1,), (2,), (3,), ("x",)])
        assert await conn.fetchval("select count(*) from many") == 3000
    finally:
        await conn.close()
    assert [tuple(r) for r in back] == rows
