"""Text-format type codecs: PostgreSQL text output <-> Python values, keyed by type OID.

The connection layer asks `default_registry.copy()` for a per-connection registry, looks up one
decoder per result column with `decoder(oid)`, and encodes parameters with `encode(value, oid)`.
`register()` is what `Connection.set_type_codec()` uses to add or override a type.

Results match asyncpg's for the same query (tests/driver/codec_corpus.py checks it):

=========================  ===================================================================
bool, int2/4/8, oid, xid   bool, int
float4, float8             float (float4 rounded to float32, as asyncpg's binary path gives it)
numeric                    Decimal, exact at any precision, NaN and +-Infinity included
text, varchar, bpchar,     str (bpchar keeps its padding)
name, unknown types
"char"                     bytes of length 1 ('' is b'\\x00')
bytea                      bytes (hex and escape bytea_output both read)
date, timestamp            date, naive datetime; +-infinity -> max/min
timestamptz                aware datetime in UTC; +-infinity -> naive datetime.max/min
time, timetz               time, aware time
interval                   timedelta, a month is 30 days and a year 365
uuid, json/jsonb           uuid.UUID, parsed JSON (asyncpg leaves JSON as str)
inet, cidr                 IPv4/6Address, or IPv4/6Interface when a prefix is printed; Network
pg_lsn, int2/oidvector     int, list[int]
arrays of all of these     nested lists; NULL -> None; lower bounds are dropped
=========================  ===================================================================

Where it differs from asyncpg, on purpose: JSON is parsed; a timetz offset keeps its seconds
(asyncpg truncates it to minutes); an interval beyond timedelta raises CodecError (asyncpg
overflows a C int and returns a wrong value). Like asyncpg, BC dates, years past 9999 and
'24:00:00' raise (CodecError, a ValueError). Arrays of types the registry does not know
(enums, domains, composites) come back as their '{...}' text until a codec is registered.
"""

from __future__ import annotations

from .arrays import ArgumentError, CodecError, DecodeError, format_array, parse_array
from .registry import Encoder, TypeRegistry, default_registry

__all__ = [
    "ArgumentError",
    "CodecError",
    "DecodeError",
    "Encoder",
    "TypeRegistry",
    "default_registry",
    "format_array",
    "parse_array",
]
