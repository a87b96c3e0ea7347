"""An optional codec for PostGIS points: geometry/geography text output (hex EWKB) <-> Point.

PostGIS types have no fixed OID, so nothing registers this by default; a connection opts in::

    from driver.codecs import postgis

    await conn.set_type_codec("geometry", encoder=postgis.encode_point,
                              decoder=postgis.decode_point)
    await conn.set_type_codec("geography", encoder=postgis.encode_point,
                              decoder=postgis.decode_point)
    row = await conn.fetchrow("select location from sites limit 1")
    row["location"]  # Point(x=2.29, y=48.86, srid=4326)

The format is PostGIS's extended WKB (doc/ZMSGeoms.txt in the PostGIS sources): one byte for
the byte order, a uint32 type whose high bits flag Z, M and an embedded SRID, the SRID if
flagged, then the coordinates as doubles. The ISO WKB type codes for Z/M (1001, 2001, 3001)
are accepted too.
"""

from __future__ import annotations

import binascii
import struct
from dataclasses import dataclass

from .arrays import CodecError

_WKB_POINT = 1
_FLAG_Z = 0x80000000
_FLAG_M = 0x40000000
_FLAG_SRID = 0x20000000
_GEOMETRY_NAMES = {
    2: "LINESTRING",
    3: "POLYGON",
    4: "MULTIPOINT",
    5: "MULTILINESTRING",
    6: "MULTIPOLYGON",
    7: "GEOMETRYCOLLECTION",
}


@dataclass(frozen=True, slots=True)
class Point:
    """A 2D point (x = longitude, y = latitude for geography), optionally with z and an SRID.

    POINT EMPTY decodes as Point(nan, nan), which is how WKB spells it.
    """

    x: float
    y: float
    srid: int | None = None
    z: float | None = None


def decode_point(data: bytes | str) -> Point:
    """Decode hex (E)WKB as sent by the server for geometry and geography columns.

    Accepts bytes or str, so it works both as a registry decoder and as an asyncpg-style text
    decoder. An M coordinate is read and dropped.

    Raises:
        CodecError: not hex WKB, or a geometry other than a point.
    """
    try:
        raw = binascii.unhexlify(data)
    except (binascii.Error, ValueError) as exc:
        raise CodecError(f"not hex WKB: {data[:40]!r}") from exc
    if len(raw) < 5 or raw[0] > 1:
        raise CodecError(f"not WKB: {data[:40]!r}")
    order = "<" if raw[0] == 1 else ">"
    (code,) = struct.unpack_from(order + "I", raw, 1)
    has_z = bool(code & _FLAG_Z)
    has_m = bool(code & _FLAG_M)
    base = code & 0x0FFFFFFF
    if base >= 1000:  # ISO WKB: 1000s mean Z, 2000s M, 3000s ZM
        thousands, base = divmod(base, 1000)
        has_z = has_z or thousands in (1, 3)
        has_m = has_m or thousands in (2, 3)
    if base != _WKB_POINT:
        name = _GEOMETRY_NAMES.get(base, f"type {base}")
        raise CodecError(f"decode_point handles POINT only, got a {name}")
    offset = 5
    srid = None
    if code & _FLAG_SRID:
        (srid,) = struct.unpack_from(order + "i", raw, offset)
        offset += 4
    count = 2 + has_z + has_m
    if len(raw) != offset + 8 * count:
        raise CodecError(f"truncated or oversized WKB point: {len(raw)} bytes")
    coords = struct.unpack_from(f"{order}{count}d", raw, offset)
    return Point(coords[0], coords[1], srid, coords[2] if has_z else None)


def encode_point(point: Point) -> str:
    """Encode as little-endian hex EWKB, which both geometry_in and geography_in accept.

    Raises:
        TypeError: `point` is not a Point.
    """
    if not isinstance(point, Point):
        raise TypeError(f"expected a postgis.Point, got {type(point).__name__}")
    code = _WKB_POINT
    coords: tuple[float, ...] = (point.x, point.y)
    if point.z is not None:
        code |= _FLAG_Z
        coords += (point.z,)
    head = struct.pack("<BI", 1, code | (_FLAG_SRID if point.srid is not None else 0))
    if point.srid is not None:
        head += struct.pack("<i", point.srid)
    return (head + struct.pack(f"<{len(coords)}d", *coords)).hex().upper()
