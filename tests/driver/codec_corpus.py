"""SQL literals covering every type the driver decodes, edge cases included, plus the comparison
rules against asyncpg. Shared by the codec tests and the connection-level tests: anything that
runs `select <case.sql>` over a driver connection can check its result with `same()` against
asyncpg's (after `from_asyncpg()`).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import math
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

# the session TimeZones the corpus is run under: whole hours, half hours, 45 minutes, negative
# half hours, and Amsterdam, whose 19th-century offsets (local mean time) have seconds in them
TIMEZONES = ["UTC", "Asia/Kolkata", "Asia/Kathmandu", "America/St_Johns", "Europe/Amsterdam"]

JSON_OIDS = {114, 3802, 199, 3807}  # json, jsonb and their arrays: asyncpg leaves them as text


@dataclass(frozen=True)
class Case:
    """One `select <sql>`.

    infer: encode(value) with no known type, then `$1::<type>`, gives the value back. False where
        the Python type does not name a type the column's type can be cast from ("char" values
        are bytes, which infer bytea; a JSON array is a list, which infers an SQL array).
    roundtrip: the value survives being sent as a parameter at all. False only for JSON scalars
        that are Python str or None: a str for a json parameter is JSON text (asyncpg's rule too)
        and None is SQL NULL.
    """

    sql: str
    infer: bool = True
    roundtrip: bool = True


def _c(sql: str, infer: bool = True, roundtrip: bool = True) -> Case:
    return Case(sql, infer, roundtrip)


CASES: list[Case] = [
    # NULL and bool
    _c("NULL::int4"),
    _c("NULL::text"),
    _c("true"),
    _c("false"),
    _c("'{t,f,NULL}'::bool[]"),
    # integers and oid
    _c("0::int2"),
    _c("(-32768)::int2"),
    _c("32767::int2"),
    _c("(-2147483648)::int4"),
    _c("2147483647::int4"),
    _c("(-9223372036854775808)::int8"),
    _c("9223372036854775807::int8"),
    _c("4294967295::oid"),
    _c("'12345'::xid", infer=False),
    _c("'0/16B3748'::pg_lsn", infer=False),
    _c("'1 2 3'::int2vector", infer=False),
    _c("'0 4294967295'::oidvector", infer=False),
    _c("'{1,NULL,-3}'::int4[]"),
    _c("'{{1,2},{3,4}}'::int8[]"),
    _c("'{{{1}},{{NULL}}}'::int2[]"),
    _c("'[0:2]={1,2,3}'::int4[]"),
    _c("'[-1:0][2:3]={{1,2},{3,4}}'::int2[]"),
    _c("'{}'::int4[]"),
    _c("'{}'::int8[][]"),
    _c("'{{NULL,NULL}}'::int4[]"),
    _c("'{0,4294967295}'::oid[]"),
    # floats
    _c("1.5::float4"),
    _c("0.1::float4"),
    _c("'NaN'::float4"),
    _c("'Infinity'::float4"),
    _c("'-Infinity'::float4"),
    _c("'1e-45'::float4"),
    _c("'3.4028235e38'::float4"),
    _c("'-0'::float4"),
    _c("'{0.1,NaN,-Infinity,NULL}'::float4[]"),
    _c("0.1::float8"),
    _c("pi()"),
    _c("'NaN'::float8"),
    _c("'Infinity'::float8"),
    _c("'-Infinity'::float8"),
    _c("'-0'::float8"),
    _c("1e308::float8"),
    _c("'5e-324'::float8"),
    _c("'{1.5,NULL,Infinity,NaN}'::float8[]"),
    # numeric
    _c("0::numeric"),
    _c("'-1.50'::numeric"),
    _c("'NaN'::numeric"),
    _c("'Infinity'::numeric"),
    _c("'-Infinity'::numeric"),
    _c("'1e100'::numeric"),
    _c("'1e-100'::numeric"),
    _c("9223372036854775808::numeric"),
    _c("'123456789012345678901234567890.123456789'::numeric"),
    _c("repeat('9', 1000)::numeric"),
    # integers ending in whole zero groups: asyncpg's exponent (Decimal('1E+4')), not digits
    _c("10000::numeric"),
    _c("'-20000'::numeric"),
    _c("120000000::numeric"),
    _c("'1e1000'::numeric"),
    _c("'10000.0000'::numeric"),
    _c("'{100000,0,1000}'::numeric[]"),
    _c("('0.' || repeat('1', 16383))::numeric"),
    _c("'{1.5,NaN,NULL,-Infinity}'::numeric[]"),
    # strings
    _c("''::text"),
    _c("'hello'::text"),
    _c("'ünïcödé 日本語 🎉'::text"),
    _c("E'tab\\there\\nnew line\\r'::text"),
    _c("'quote '' \"dq\" back\\slash {brace} a,b'::text"),
    _c("'NULL'::text"),
    _c("'abc'::varchar(5)"),
    _c("'ab'::char(4)"),
    _c("'pg_class'::name"),
    _c(
        "array['a', NULL, 'NULL', 'null', '', ' ', ' lead', 'trail ', 'x y', 'a,b', '{}',"
        " '\"', '\\', '\\\"', 'ü🎉', E'\\t', E'new\\nline']::text[]"
    ),
    _c("array[array['a','b'],array['c',NULL]]::text[]"),
    _c("'{}'::text[]"),
    _c("'{x,\"y z\"}'::varchar[]"),
    _c("array['a'::char(3), NULL]"),
    _c("array['a'::name, 'b c']"),
    # "char"
    _c("'a'::\"char\"", infer=False),
    _c("''::\"char\"", infer=False),
    _c("'\\'::\"char\"", infer=False),
    _c("convert_from('\\xc3a9'::bytea, 'latin1')::\"char\"", infer=False),
    _c("array['a'::\"char\", '\\', NULL]", infer=False),
    # bytea
    _c("''::bytea"),
    _c("'\\x00ff'::bytea"),
    _c("convert_to('ünï', 'UTF8')"),
    _c("'\\x5c227b2c7d'::bytea"),
    _c("array['\\x00'::bytea, NULL, '\\x5c7b2c7d22'::bytea, '']"),
    # date
    _c("'2024-02-29'::date"),
    _c("'0001-01-01'::date"),
    _c("'0044-03-15'::date"),
    _c("'9999-12-31'::date"),
    _c("'infinity'::date"),
    _c("'-infinity'::date"),
    _c("array['2024-01-01'::date, NULL, 'infinity']"),
    # time and timetz
    _c("'00:00'::time"),
    _c("'23:59:59.999999'::time"),
    _c("'12:34:56.5'::time"),
    _c("array['01:02:03'::time, NULL]"),
    _c("'12:34:56+05:30'::timetz"),
    _c("'00:00:00-03:30'::timetz"),
    _c("'23:59:59.999999+14'::timetz"),
    _c("'00:00:00.000001-12'::timetz"),
    _c("array['01:02:03+01'::timetz]"),
    # timestamp
    _c("'2024-01-02 03:04:05.123456'::timestamp"),
    _c("'2024-01-02 03:04:05'::timestamp"),
    _c("'2024-01-02 03:04:05.1'::timestamp"),
    _c("'0001-01-01 00:00:00'::timestamp"),
    _c("'9999-12-31 23:59:59.999999'::timestamp"),
    _c("'infinity'::timestamp"),
    _c("'-infinity'::timestamp"),
    _c("array['2024-01-02 03:04:05'::timestamp, NULL, '-infinity']"),
    # timestamptz (printed in the session's TimeZone, see TIMEZONES)
    _c("'2024-01-02 03:04:05.123456+00'::timestamptz"),
    _c("'2024-06-30 23:59:59.5+05:45'::timestamptz"),
    _c("'1850-01-01 12:00:00+00'::timestamptz"),
    _c("'1900-06-01 00:00:00+00'::timestamptz"),
    _c("'0002-01-01 00:00:00+00'::timestamptz"),
    _c("'9999-12-30 00:00:00+00'::timestamptz"),
    _c("'infinity'::timestamptz"),
    _c("'-infinity'::timestamptz"),
    _c("array['2024-01-02 03:04:05+02'::timestamptz, NULL]"),
    # interval (IntervalStyle 'postgres'; months are 30 days and years 365, as asyncpg has it)
    _c("'00:00:00'::interval"),
    _c("'1 mon'::interval"),
    _c("'1 year'::interval"),
    _c("'1 year 2 mons 3 days 04:05:06.789'::interval"),
    _c("'-1 year -2 mons +3 days -04:05:06.789'::interval"),
    _c("'-13 mons'::interval"),
    _c("'1 mon -1 days'::interval"),
    _c("'-00:00:01'::interval"),
    _c("'-1 days +23:59:59'::interval"),
    _c("'0.000001 seconds'::interval"),
    _c("'100 hours'::interval"),
    _c("'2000000 years'::interval"),
    _c("array['1 day'::interval, NULL, '-1 mon']"),
    # uuid
    _c("'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid"),
    _c("'00000000-0000-0000-0000-000000000000'::uuid"),
    _c("array['a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid, NULL]"),
    # json and jsonb
    _c('\'{"a": [1, 2.5, null, true], "b": {"c": "ü \\\\ \\"q\\""}}\'::json'),
    _c('\'{"k": "v", "n": {"big": 12345678901234567890, "f": 1.10}}\'::jsonb'),
    _c("'{}'::jsonb"),
    _c('\'[1, "two", null, {"x": []}]\'::jsonb', infer=False),
    _c("'123.5'::jsonb", infer=False),
    _c("'true'::json", infer=False),
    _c("'\"str\"'::jsonb", infer=False, roundtrip=False),
    _c("'null'::jsonb", infer=False, roundtrip=False),
    _c('array[\'{"a": 1}\'::jsonb, NULL, \'{"b": "{,}"}\']'),
    _c('array[\'{"a": "x"}\'::json]'),
    # inet and cidr
    _c("'1.2.3.4'::inet"),
    _c("'1.2.3.4/24'::inet"),
    _c("'10.0.0.0/8'::inet"),
    _c("'::1'::inet"),
    _c("'2001:db8::1/64'::inet"),
    _c("'::ffff:1.2.3.4'::inet"),
    _c("'10.0.0.0/8'::cidr"),
    _c("'1.2.3.4/32'::cidr"),
    _c("'2001:db8::/32'::cidr"),
    _c("array['1.2.3.4'::inet, '::1/128', NULL, '192.168.0.1/16']"),
    _c("array['10.0.0.0/8'::cidr, NULL]"),
    # types without a codec of their own come back as str, as asyncpg returns them
    _c("'int4'::regtype"),
    _c("'pg_class'::regclass"),
    _c("'{int4,text}'::regtype[]"),
    _c("'a & b'::tsquery"),
    _c("'08:00:2b:01:02:03'::macaddr"),
    _c("array['08:00:2b:01:02:03'::macaddr]"),
    _c("'$.a'::jsonpath"),
    _c("'1.5'::money"),
]

# What asyncpg gets wrong (it returns something else); the driver returns the value given here.
ASYNCPG_DIFFERS: dict[str, tuple[Any, str]] = {
    "'12:34:56.789+05:30:15'::timetz": (
        dt.time(12, 34, 56, 789000, tzinfo=dt.timezone(dt.timedelta(seconds=19815))),
        "asyncpg truncates a timetz offset to whole minutes; the driver keeps its seconds",
    ),
}


def from_asyncpg(value: Any, oid: int) -> Any:
    """asyncpg's value as the driver returns it: asyncpg leaves json/jsonb (and their arrays) as
    text, the driver parses it."""
    if oid not in JSON_OIDS:
        return value
    return _parse_json_leaves(value)


def _parse_json_leaves(value: Any) -> Any:
    if isinstance(value, list):
        return [_parse_json_leaves(item) for item in value]
    return None if value is None else json.loads(value)


def same(ours: Any, theirs: Any) -> bool:
    """Equal values of the same type: NaN equals NaN, floats keep their sign, datetimes and
    times keep their UTC offsets, an IPv4Interface is not an IPv4Address."""
    if isinstance(theirs, list):
        return (
            type(ours) is list
            and len(ours) == len(theirs)
            and all(same(a, b) for a, b in zip(ours, theirs, strict=True))
        )
    if isinstance(theirs, dict):
        return (
            type(ours) is dict
            and ours.keys() == theirs.keys()
            and all(same(ours[k], theirs[k]) for k in theirs)
        )
    if isinstance(theirs, uuid.UUID):  # asyncpg returns its own UUID subclass
        return type(ours) is uuid.UUID and ours == theirs
    if type(ours) is not type(theirs):
        return False
    if isinstance(theirs, float):
        if math.isnan(theirs):
            return math.isnan(ours)
        return bool(ours == theirs and math.copysign(1, ours) == math.copysign(1, theirs))
    if isinstance(theirs, Decimal) and theirs.is_nan():
        return bool(ours.is_nan())
    if isinstance(theirs, Decimal):  # the same digits and exponent: the same str()
        return bool(ours.as_tuple() == theirs.as_tuple())
    if isinstance(theirs, dt.datetime | dt.time):
        return bool(ours == theirs and ours.utcoffset() == theirs.utcoffset())
    if isinstance(theirs, ipaddress.IPv4Interface | ipaddress.IPv6Interface):
        return bool(ours == theirs and ours.network == theirs.network)
    return bool(ours == theirs)
