"""Text-format codecs for the geometric types (point, lseg, box, path, polygon, line, circle)
and bit/varbit, to and from asyncpg's value types in ``driver.types``.

The server prints every geometric value as its numbers in a fixed frame of brackets
("Geometric Types" in the PostgreSQL docs), so decoding reads the numbers and the frame's
first character; encoding writes the frame back with ``repr`` of each float (exact).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from ..types import BitString, Box, Circle, Line, LineSegment, Path, Point, Polygon
from .arrays import CodecError, takes_sequences

__all__ = ["DECODERS", "ENCODERS", "INFERRED"]

_NUMBER = re.compile(rb"[-+]?(?:Infinity|NaN|inf|nan|[0-9.]+(?:[eE][-+]?[0-9]+)?)")


def _numbers(data: bytes, count: int | None = None) -> list[float]:
    found = [float(x) for x in _NUMBER.findall(data)]
    if (count is not None and len(found) != count) or (count is None and len(found) % 2):
        raise CodecError(f"malformed geometric value: {data!r}")
    return found


def _points(values: list[float]) -> list[tuple[float, float]]:
    return [(values[i], values[i + 1]) for i in range(0, len(values), 2)]


def decode_point(data: bytes) -> Point:
    return Point(*_numbers(data, 2))


def decode_lseg(data: bytes) -> LineSegment:
    x1, y1, x2, y2 = _numbers(data, 4)
    return LineSegment((x1, y1), (x2, y2))


def decode_box(data: bytes) -> Box:
    x1, y1, x2, y2 = _numbers(data, 4)
    return Box((x1, y1), (x2, y2))


def decode_path(data: bytes) -> Path:
    closed = data.lstrip()[:1] == b"("
    return Path(*_points(_numbers(data)), is_closed=closed)


def decode_polygon(data: bytes) -> Polygon:
    return Polygon(*_points(_numbers(data)))


def decode_line(data: bytes) -> Line:
    return Line(*_numbers(data, 3))


def decode_circle(data: bytes) -> Circle:
    x, y, r = _numbers(data, 3)
    return Circle((x, y), r)


def decode_bits(data: bytes) -> BitString:
    return BitString(data.decode())


def _f(value: Any) -> str:
    return repr(float(value))


def _pt(value: Any) -> str:
    try:
        x, y = value
    except (TypeError, ValueError):
        raise CodecError(f"a point is a sequence of two numbers, not {value!r}") from None
    return f"({_f(x)},{_f(y)})"


def _pair(value: Any) -> tuple[Any, Any]:
    if not isinstance(value, Sequence) or len(value) != 2:
        raise CodecError(f"expected a sequence of two points, not {value!r}")
    return value[0], value[1]


def encode_point(value: Any) -> str:
    return _pt(value)


def encode_lseg(value: Any) -> str:
    a, b = _pair(value)
    return f"[{_pt(a)},{_pt(b)}]"


def encode_box(value: Any) -> str:
    a, b = _pair(value)
    return f"{_pt(a)},{_pt(b)}"


def encode_path(value: Any) -> str:
    """A Path says whether it is closed; otherwise a tuple of points is a closed path and a
    list an open one, as asyncpg reads them."""
    closed = value.is_closed if isinstance(value, Path) else isinstance(value, tuple)
    body = ",".join(_pt(p) for p in value)
    return f"({body})" if closed else f"[{body}]"


def encode_polygon(value: Any) -> str:
    return "(" + ",".join(_pt(p) for p in value) + ")"


def encode_line(value: Any) -> str:
    a, b, c = value
    return f"{{{_f(a)},{_f(b)},{_f(c)}}}"


def encode_circle(value: Any) -> str:
    center, radius = value
    return f"<{_pt(center)},{_f(radius)}>"


def encode_bits(value: Any) -> str:
    if isinstance(value, BitString):
        return value.as_string().replace(" ", "")
    if isinstance(value, bytes | bytearray | memoryview):  # eight bits a byte, as asyncpg
        return BitString.frombytes(bytes(value)).as_string().replace(" ", "")
    if isinstance(value, str):
        return value
    raise CodecError(f"a BitString expected (got type {type(value)})")


POINT, LSEG, PATH, BOX, POLYGON, LINE, CIRCLE, BIT, VARBIT = (
    600, 601, 602, 603, 604, 628, 718, 1560, 1562,
)  # fmt: skip
# OID -> (decoder, encoder, array OID, typdelim)
DECODERS = {
    POINT: (decode_point, encode_point, 1017, ","),
    LSEG: (decode_lseg, encode_lseg, 1018, ","),
    PATH: (decode_path, encode_path, 1019, ","),
    BOX: (decode_box, encode_box, 1020, ";"),
    POLYGON: (decode_polygon, encode_polygon, 1027, ","),
    LINE: (decode_line, encode_line, 629, ","),
    CIRCLE: (decode_circle, encode_circle, 719, ","),
    BIT: (decode_bits, encode_bits, 1561, ","),
    VARBIT: (decode_bits, encode_bits, 1563, ","),
}
for _oid in (POINT, LSEG, PATH, BOX, POLYGON, LINE, CIRCLE):
    takes_sequences(DECODERS[_oid][1])
ENCODERS = {oid: entry[1] for oid, entry in DECODERS.items()}
# Python type -> the OID a bare value of it declares
INFERRED: dict[type, int] = {
    Point: POINT,
    LineSegment: LSEG,
    Path: PATH,
    Box: BOX,
    Polygon: POLYGON,
    Line: LINE,
    Circle: CIRCLE,
    BitString: VARBIT,
}
