"""Decoders and encoders on exact text, no server: the edge cases spelled out one by one."""

from __future__ import annotations

import datetime as dt
import ipaddress
import math
import uuid
from decimal import Decimal
from typing import Any

import pytest

from driver.codecs import CodecError, default_registry, format_array, parse_array
from driver.codecs import oids as o
from tests.driver.codec_corpus import same

UTC = dt.UTC


def dec(oid: int, data: bytes) -> Any:
    return default_registry.decoder(oid)(data)


def enc(value: object, oid: int = 0) -> tuple[int, bytes | None]:
    return default_registry.encode(value, oid)


# -- decoding ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("oid", "data", "expected"),
    [
        (o.BOOL, b"t", True),
        (o.BOOL, b"f", False),
        (o.INT2, b"-32768", -32768),
        (o.INT8, b"9223372036854775807", 2**63 - 1),
        (o.OID, b"4294967295", 4294967295),
        (o.FLOAT8, b"-0", -0.0),
        (o.FLOAT8, b"1e+308", 1e308),
        (o.FLOAT4, b"0.1", 0.10000000149011612),
        (o.FLOAT4, b"3.4028235e+38", 3.4028234663852886e38),
        (o.NUMERIC, b"-1.50", Decimal("-1.50")),
        (o.NUMERIC, b"NaN", Decimal("NaN")),
        (o.NUMERIC, b"-Infinity", Decimal("-Infinity")),
        (o.NUMERIC, b"1" * 1000 + b"." + b"2" * 1000, Decimal("1" * 1000 + "." + "2" * 1000)),
        (o.TEXT, "ünï 🎉 日本".encode(), "ünï 🎉 日本"),
        (o.BPCHAR, b"ab  ", "ab  "),
        (o.NAME, b"pg_class", "pg_class"),
        (o.CHAR, b"a", b"a"),
        (o.CHAR, b"", b"\x00"),
        (o.CHAR, b"\\", b"\\"),
        (o.CHAR, b"\\303", b"\xc3"),
        (o.BYTEA, b"\\x", b""),
        (o.BYTEA, b"\\x00ff5c", b"\x00\xff\\"),
        (o.BYTEA, b"a\\000\\\\b\\377", b"a\x00\\b\xff"),  # bytea_output = 'escape'
        (o.BYTEA, b"plain", b"plain"),
        (
            o.UUID,
            b"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
            uuid.UUID(int=0xA0EEBC999C0B4EF8BB6D6BB9BD380A11),
        ),
        (o.JSON, b'{"a": [1, null, "\\u00fc"]}', {"a": [1, None, "ü"]}),
        (o.JSONB, b'"str"', "str"),
        (o.JSONB, b"null", None),
        (o.INET, b"1.2.3.4", ipaddress.IPv4Address("1.2.3.4")),
        (o.INET, b"1.2.3.4/24", ipaddress.IPv4Interface("1.2.3.4/24")),
        (o.INET, b"::1", ipaddress.IPv6Address("::1")),
        (o.INET, b"2001:db8::1/64", ipaddress.IPv6Interface("2001:db8::1/64")),
        (o.CIDR, b"10.0.0.0/8", ipaddress.IPv4Network("10.0.0.0/8")),
        (o.INT2VECTOR, b"1 2 3", [1, 2, 3]),
        (o.INT2VECTOR, b"", []),
        (o.PG_LSN, b"16/B374D848", (0x16 << 32) | 0xB374D848),
        (99999, b"anything \xc3\xbc", "anything ü"),  # unknown OID
        (1009, b'{"a\\\\b","c\\"d",NULL,"NULL",""}', ["a\\b", 'c"d', None, "NULL", ""]),
        (1007, b"{}", []),
        (1007, b"[1:3]={1,2,3}", [1, 2, 3]),
        (1016, b"{{1,NULL},{3,4}}", [[1, None], [3, 4]]),
        (
            1041,
            b'{1.2.3.4/24,"::1"}',
            [ipaddress.ip_interface("1.2.3.4/24"), ipaddress.ip_address("::1")],
        ),
        (3807, b'{"{\\"a\\": 1}",NULL}', [{"a": 1}, None]),
        (1001, b'{"\\\\x00ff",NULL}', [b"\x00\xff", None]),
        (2211, b"{integer,text}", ["integer", "text"]),  # regtype[]: elements stay str
    ],
)
def test_decode(oid: int, data: bytes, expected: Any) -> None:
    assert same(dec(oid, data), expected)


def test_decode_float_specials() -> None:
    assert math.isnan(dec(o.FLOAT8, b"NaN"))
    assert dec(o.FLOAT8, b"Infinity") == math.inf
    assert dec(o.FLOAT4, b"-Infinity") == -math.inf
    assert math.isnan(dec(o.FLOAT4, b"NaN"))
    assert math.copysign(1, dec(o.FLOAT4, b"-0")) == -1


@pytest.mark.parametrize(
    ("oid", "data", "expected"),
    [
        (o.DATE, b"2024-02-29", dt.date(2024, 2, 29)),
        (o.DATE, b"0001-01-01", dt.date.min),
        (o.DATE, b"infinity", dt.date.max),
        (o.DATE, b"-infinity", dt.date.min),
        (o.TIMESTAMP, b"2024-01-02 03:04:05.1", dt.datetime(2024, 1, 2, 3, 4, 5, 100000)),
        (o.TIMESTAMP, b"infinity", dt.datetime.max),
        (o.TIMESTAMP, b"-infinity", dt.datetime.min),
        (o.TIMESTAMPTZ, b"2024-01-02 03:04:05+01", dt.datetime(2024, 1, 2, 2, 4, 5, tzinfo=UTC)),
        (
            o.TIMESTAMPTZ,
            b"2024-01-02 03:04:05.5-03:30",
            dt.datetime(2024, 1, 2, 6, 34, 5, 500000, tzinfo=UTC),
        ),
        (o.TIMESTAMPTZ, b"1850-01-01 12:19:32+00:19:32", dt.datetime(1850, 1, 1, 12, tzinfo=UTC)),
        (o.TIMESTAMPTZ, b"infinity", dt.datetime.max),  # naive, as asyncpg returns it
        (o.TIME, b"23:59:59.999999", dt.time(23, 59, 59, 999999)),
        (o.TIMETZ, b"12:00:00-03:30", dt.time(12, tzinfo=dt.timezone(-dt.timedelta(hours=3.5)))),
        (
            o.TIMETZ,
            b"12:00:00+05:30:15",
            dt.time(12, tzinfo=dt.timezone(dt.timedelta(seconds=19815))),
        ),
        (o.INTERVAL, b"00:00:00", dt.timedelta()),
        (o.INTERVAL, b"1 mon", dt.timedelta(days=30)),
        (o.INTERVAL, b"1 year", dt.timedelta(days=365)),
        (o.INTERVAL, b"-1 years -1 mons", dt.timedelta(days=-395)),
        (
            o.INTERVAL,
            b"1 year 2 mons 3 days 04:05:06.789",
            dt.timedelta(days=428, seconds=14706, microseconds=789000),
        ),
        (o.INTERVAL, b"-1 days +23:59:59", dt.timedelta(seconds=-1)),
        (o.INTERVAL, b"-00:00:00.000001", dt.timedelta(microseconds=-1)),
        (o.INTERVAL, b"100:00:00", dt.timedelta(hours=100)),
        (o.INTERVAL, b"3 days", dt.timedelta(days=3)),
        (1182, b"{2024-01-01,NULL,infinity}", [dt.date(2024, 1, 1), None, dt.date.max]),
        (1185, b'{"2024-01-02 03:04:05+00"}', [dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)]),
    ],
)
def test_decode_temporal(oid: int, data: bytes, expected: Any) -> None:
    got = dec(oid, data)
    assert got == expected
    assert type(got) is type(expected)
    if isinstance(expected, dt.datetime | dt.time):
        assert got.utcoffset() == expected.utcoffset()


@pytest.mark.parametrize(
    ("oid", "data", "message"),
    [
        (o.DATE, b"0044-03-15 BC", "no years before 1 AD"),
        (o.DATE, b"10000-01-01", "years 1-9999"),
        (o.TIMESTAMP, b"0044-03-15 12:00:00 BC", "no years before 1 AD"),
        (o.TIMESTAMPTZ, b"294276-12-31 23:59:59+00", "years 1-9999"),
        (o.TIME, b"24:00:00", "stops at 23:59:59.999999"),
        (o.TIMETZ, b"24:00:00+00", "stops at 23:59:59.999999"),
        (o.DATE, b"01/02/2024", "DateStyle 'ISO'"),
        (o.TIMESTAMPTZ, b"Tue 02 Jan 03:04:05 2024 CET", "DateStyle 'ISO'"),
        (o.INTERVAL, b"P1Y2M", "IntervalStyle 'postgres'"),
        (o.INTERVAL, b"@ 1 year", "IntervalStyle 'postgres'"),
        (o.INTERVAL, b"", "IntervalStyle 'postgres'"),
        (o.INTERVAL, b"178000000 years", "beyond timedelta"),
        (1007, b"1,2", "not an array literal"),
        (1009, b'{"a"', "not an array literal"),
        (1009, b"{a}{b}", "after the end"),
    ],
)
def test_decode_errors_say_why(oid: int, data: bytes, message: str) -> None:
    with pytest.raises(CodecError, match=message):
        dec(oid, data)


def test_decoders_are_plain_callables_for_hot_types() -> None:
    """The per-value cost of the common types is one builtin call."""
    assert default_registry.decoder(o.INT4) is int
    assert default_registry.decoder(o.FLOAT8) is float
    assert default_registry.decoder(o.TEXT) is bytes.decode
    assert default_registry.decoder(123456) is bytes.decode


# -- encoding without a known parameter type -------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, (0, None)),
        ("text ü", (0, "text ü".encode())),
        (True, (o.BOOL, b"t")),
        (0, (o.INT8, b"0")),
        (-(2**63), (o.INT8, b"-9223372036854775808")),
        (2**63, (o.NUMERIC, b"9223372036854775808")),
        (1.5, (o.FLOAT8, b"1.5")),
        (math.nan, (o.FLOAT8, b"NaN")),
        (-math.inf, (o.FLOAT8, b"-Infinity")),
        (Decimal("1E+100"), (o.NUMERIC, b"1E+100")),
        (Decimal("-Infinity"), (o.NUMERIC, b"-Infinity")),
        (b"\x00\\", (o.BYTEA, b"\\x005c")),
        (bytearray(b"\x01"), (o.BYTEA, b"\\x01")),
        (memoryview(b"\x02"), (o.BYTEA, b"\\x02")),
        (dt.date(2024, 2, 29), (o.DATE, b"2024-02-29")),
        (dt.date.max, (o.DATE, b"infinity")),
        (dt.date.min, (o.DATE, b"-infinity")),
        (dt.datetime(2024, 1, 2, 3, 4, 5, 6), (o.TIMESTAMP, b"2024-01-02 03:04:05.000006")),
        (dt.datetime.max, (o.TIMESTAMP, b"infinity")),
        (dt.datetime.min, (o.TIMESTAMP, b"-infinity")),
        (dt.datetime.max.replace(tzinfo=UTC), (o.TIMESTAMPTZ, b"infinity")),
        (dt.datetime.min.replace(tzinfo=UTC), (o.TIMESTAMPTZ, b"-infinity")),
        (dt.datetime(44, 3, 15, tzinfo=UTC), (o.TIMESTAMPTZ, b"0044-03-15 00:00:00+00:00")),
        (dt.time(1, 2, 3), (o.TIME, b"01:02:03")),
        (
            dt.time(1, 2, tzinfo=dt.timezone(dt.timedelta(seconds=-19815))),
            (o.TIMETZ, b"01:02:00-05:30:15"),
        ),
        (dt.timedelta(seconds=-1), (o.INTERVAL, b"-1 days +23:59:59.000000")),
        (dt.timedelta(days=400, microseconds=7), (o.INTERVAL, b"400 days +00:00:00.000007")),
        (uuid.UUID(int=1), (o.UUID, b"00000000-0000-0000-0000-000000000001")),
        ({"a": [1, "ü"]}, (o.JSONB, b'{"a": [1, "\\u00fc"]}')),
        (ipaddress.ip_address("::1"), (o.INET, b"::1")),
        (ipaddress.ip_interface("1.2.3.4/24"), (o.INET, b"1.2.3.4/24")),
        (ipaddress.ip_network("10.0.0.0/8"), (o.CIDR, b"10.0.0.0/8")),
        ([], (0, b"{}")),
        ([None, None], (0, b"{NULL,NULL}")),
        (["a", None], (0, b"{a,NULL}")),
        ((1, 2), (1016, b"{1,2}")),
        ([[1, None], [3, 4]], (1016, b"{{1,NULL},{3,4}}")),
        ([1, 2.5], (1022, b"{1,2.5}")),
        ([1, Decimal("2.5")], (1231, b"{1,2.5}")),
        ([1.5, Decimal("2.5")], (1231, b"{1.5,2.5}")),
        ([1, 2**70], (1231, b"{1,1180591620717411303424}")),
        ([True, 1], (0, b"{t,1}")),
        ([b"\\"], (1001, b'{"\\\\x5c"}')),
        ([{"a": "b,c"}], (3807, b'{"{\\"a\\": \\"b,c\\"}"}')),
        (
            ["", " ", "NULL", "null", "a b", "{", "}", ",", '"', "\\", "ü"],
            (0, b'{""," ","NULL","null","a b","{","}",",","\\"","\\\\",\xc3\xbc}'),
        ),
    ],
)
def test_encode_inferred(value: object, expected: tuple[int, bytes | None]) -> None:
    assert enc(value) == expected


def test_encode_subclasses_use_their_base_type() -> None:
    import enum

    class Color(str, enum.Enum):  # noqa: UP042 (str() of this one is 'Color.RED', not 'red')
        RED = "red"

    class Level(enum.IntEnum):
        HIGH = 3

    assert enc(Color.RED) == (0, b"red")
    assert enc(Level.HIGH) == (o.INT8, b"3")
    assert enc([Level.HIGH]) == (1016, b"{3}")


def test_encode_refuses_unknown_python_types() -> None:
    with pytest.raises(TypeError, match="cannot encode a complex"):
        enc(1j)
    with pytest.raises(TypeError, match="cannot encode a object"):
        enc([object()])


# -- encoding for a known parameter type ------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "oid", "expected"),
    [
        (None, o.INT4, None),
        (1.5, o.INT8, b"1"),  # anything with __int__ is int(value), as asyncpg
        (Decimal("1.5"), o.INT4, b"1"),
        ("1.5", o.NUMERIC, b"1.5"),  # numeric, uuid, inet and JSON take a str, as asyncpg
        (5, o.FLOAT8, b"5"),
        (5, o.NUMERIC, b"5"),
        (1.25, o.NUMERIC, b"1.25"),
        (math.inf, o.NUMERIC, b"Infinity"),
        (Decimal("0.1"), o.FLOAT8, b"0.1"),
        (True, o.INT4, b"1"),
        (False, o.BOOL, b"f"),
        ({"a": 1}, o.JSON, b'{"a": 1}'),
        ([1, "x"], o.JSONB, b'[1, "x"]'),
        ('{"already": "json"}', o.JSONB, b'{"already": "json"}'),
        (uuid.UUID(int=0), o.UUID, b"00000000-0000-0000-0000-000000000000"),
        ("00000000-0000-0000-0000-000000000000", o.UUID, b"00000000-0000-0000-0000-000000000000"),
        (b"a", o.CHAR, b"a"),
        (b"\x00", o.CHAR, b""),
        (b"\xc3", o.CHAR, b"\\303"),
        (dt.datetime(2024, 1, 1, 12, tzinfo=UTC), o.TIMESTAMPTZ, b"2024-01-01 12:00:00+00:00"),
        (dt.date(2024, 1, 1), o.TIMESTAMP, b"2024-01-01"),
        ([1, 2], o.INT2VECTOR, b"1 2"),
        ((0x16 << 32) | 0xB374D848, o.PG_LSN, b"16/B374D848"),
        ([1, None, 3], 1007, b"{1,NULL,3}"),
        ([["a b", None]], 1009, b'{{"a b",NULL}}'),
        ([dt.date.max], 1182, b"{infinity}"),
        ([{"k": [1]}], 3807, b'{"{\\"k\\": [1]}"}'),
        (["x", "y"], 99999, b"{x,y}"),  # an unknown type (say an enum array) gets the literal
    ],
)
def test_encode_for_known_type(value: object, oid: int, expected: bytes | None) -> None:
    assert enc(value, oid) == (oid, expected)


@pytest.mark.parametrize(
    ("value", "oid", "error"),
    [
        # a str is refused where asyncpg refuses it, with asyncpg's message
        ("42", o.INT4, "an integer is required \\(got type str\\)"),
        ("1.5", o.FLOAT8, "must be real number, not str"),
        (5, o.TEXT, "expected str, got int"),
        (uuid.UUID(int=0), o.TEXT, "expected str, got UUID"),
        (1, o.BOOL, "a boolean is required \\(got type int\\)"),
        ("x", o.BYTEA, "a bytes-like object is required, not 'str'"),
        ("a", o.CHAR, "a bytes-like object is required, not 'str'"),
        (5, 1007, "a sized iterable container expected"),
        ("{1}", 1007, "a sized iterable container expected"),
        ([1, "t"], 1007, "invalid array element: an integer is required"),
        (5, o.DATE, "expected a datetime.date instance, got 'int'"),
        ("x", o.TIME, "expected a datetime.time instance, got 'str'"),
        ("1 day", o.INTERVAL, "expected a datetime.timedelta instance"),
        ("x", o.TIMESTAMP, "expected a datetime.date or datetime.datetime instance, got 'str'"),
        (5, o.UUID, "'int' object has no attribute 'bytes'"),
        (4.1e40, o.FLOAT4, "value out of float32 range"),
    ],
)
def test_encode_refuses_values_that_do_not_fit(value: object, oid: int, error: str) -> None:
    with pytest.raises((TypeError, ValueError, OverflowError), match=error):
        enc(value, oid)


def test_encode_refuses_a_char_of_two_bytes() -> None:
    with pytest.raises(CodecError):
        enc(b"ab", o.CHAR)


# -- array text directly ----------------------------------------------------------------------


def test_parse_array_with_other_delimiters() -> None:
    assert parse_array(b"{(1,2),(3,4);(5,6),(7,8)}", bytes.decode, b";") == [
        "(1,2),(3,4)",
        "(5,6),(7,8)",
    ]
    assert parse_array(b'{a:"b:c":NULL}', bytes.decode, b":") == ["a", "b:c", None]
    assert format_array(["a", "b:c", None], str, ":") == '{a:"b:c":NULL}'
    assert format_array(["a,b"], str, ":") == "{a,b}"


def test_parse_array_tolerates_input_style_spacing() -> None:
    """Server output never has it, but array_in accepts it, and so may a user-registered type."""
    assert parse_array(b'{{ 1 , NULL },{"2", 3 }}', int) == [[1, None], [2, 3]]


def test_registry_copies_are_independent() -> None:
    reg = default_registry.copy()
    reg.register(o.INT4, encoder=lambda v: "7", decoder=lambda b: "seven")
    assert reg.decoder(o.INT4)(b"7") == "seven"
    assert reg.encode(1, o.INT4) == (o.INT4, b"7")
    assert default_registry.decoder(o.INT4)(b"7") == 7
    assert default_registry.encode(1, o.INT4) == (o.INT4, b"1")


def test_fast_uuid_is_a_complete_uuid() -> None:
    """decode_uuid fills the slots itself; the result must behave like uuid.UUID(text)."""
    import copy
    import pickle

    text = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
    got, want = dec(o.UUID, text.encode()), uuid.UUID(text)
    assert type(got) is uuid.UUID
    assert (got, hash(got), str(got), repr(got)) == (want, hash(want), text, repr(want))
    assert (got.version, got.hex, got.bytes) == (want.version, want.hex, want.bytes)
    assert pickle.loads(pickle.dumps(got)) == want == copy.deepcopy(got)
    assert dec(o.UUID, b"A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11") == want


def test_registering_an_element_type_rebuilds_its_known_array_type() -> None:
    reg = default_registry.copy()
    reg.register(o.INT4, encoder=lambda v: str(v * 10), decoder=lambda b: -int(b))
    assert reg.decoder(1007)(b"{1,NULL}") == [-1, None]
    assert reg.encode([1, 2], 1007) == (1007, b"{10,20}")
    reg.register(12345, encoder=str, decoder=bytes.decode, array_oid=12346, delimiter=":")
    reg.register(12345, encoder=None, decoder=lambda b: b.upper().decode())
    assert reg.decoder(12346)(b"{a:b,c}") == ["A", "B,C"]  # the ':' delimiter was kept
