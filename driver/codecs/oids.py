"""Built-in PostgreSQL type OIDs (fixed in pg_type.dat, the same on every server since 9.x)."""

from __future__ import annotations

BOOL = 16
BYTEA = 17
CHAR = 18  # the one-byte "char", not bpchar
NAME = 19
INT8 = 20
INT2 = 21
INT2VECTOR = 22
INT4 = 23
TEXT = 25
OID = 26
XID = 28
CID = 29
OIDVECTOR = 30
JSON = 114
CIDR = 650
FLOAT4 = 700
FLOAT8 = 701
UNKNOWN = 705
INET = 869
BPCHAR = 1042
VARCHAR = 1043
DATE = 1082
TIME = 1083
TIMESTAMP = 1114
TIMESTAMPTZ = 1184
INTERVAL = 1186
TIMETZ = 1266
NUMERIC = 1700
UUID = 2950
PG_LSN = 3220
TXID_SNAPSHOT = 2970
PG_SNAPSHOT = 5038
JSONB = 3802
XID8 = 5069

# element OID -> array OID, for the types that have a codec of their own
ARRAY_OF: dict[int, int] = {
    BOOL: 1000,
    BYTEA: 1001,
    CHAR: 1002,
    NAME: 1003,
    INT2: 1005,
    INT2VECTOR: 1006,
    INT4: 1007,
    TEXT: 1009,
    XID: 1011,
    CID: 1012,
    OIDVECTOR: 1013,
    BPCHAR: 1014,
    VARCHAR: 1015,
    INT8: 1016,
    FLOAT4: 1021,
    FLOAT8: 1022,
    OID: 1028,
    INET: 1041,
    TIMESTAMP: 1115,
    DATE: 1182,
    TIME: 1183,
    TIMESTAMPTZ: 1185,
    INTERVAL: 1187,
    NUMERIC: 1231,
    TIMETZ: 1270,
    CIDR: 651,
    JSON: 199,
    UUID: 2951,
    JSONB: 3807,
    XID8: 271,
    PG_LSN: 3221,
    TXID_SNAPSHOT: 2949,
    PG_SNAPSHOT: 5039,
}

# Built-in types that asyncpg also returns as str: listed only so their arrays become lists of
# str instead of one '{...}' string (element OID -> array OID).
TEXT_LIKE_ARRAYS: dict[int, int] = {
    24: 1008,  # regproc
    142: 143,  # xml
    774: 775,  # macaddr8
    790: 791,  # money
    829: 1040,  # macaddr
    1790: 2201,  # refcursor
    2202: 2207,  # regprocedure
    2203: 2208,  # regoper
    2204: 2209,  # regoperator
    2205: 2210,  # regclass
    2206: 2211,  # regtype
    3614: 3643,  # tsvector
    3615: 3645,  # tsquery
    3734: 3735,  # regconfig
    3769: 3770,  # regdictionary
    4072: 4073,  # jsonpath
    4089: 4090,  # regnamespace
    4096: 4097,  # regrole
    4191: 4192,  # regcollation
}

VOID = 2278
TID = 27
RECORD = 2249
RECORD_ARRAY = 2287

# range OID -> (subtype, array of the range, its multirange, array of the multirange)
RANGES: dict[int, tuple[int, int, int, int]] = {
    3904: (INT4, 3905, 4451, 6150),  # int4range
    3906: (NUMERIC, 3907, 4532, 6151),  # numrange
    3908: (TIMESTAMP, 3909, 4533, 6152),  # tsrange
    3910: (TIMESTAMPTZ, 3911, 4534, 6153),  # tstzrange
    3912: (DATE, 3913, 4535, 6155),  # daterange
    3926: (INT8, 3927, 4536, 6157),  # int8range
}
