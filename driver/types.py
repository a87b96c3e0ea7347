"""asyncpg's value types (``asyncpg.types``): ranges, bit strings, geometric values, and the
``Type``/``Attribute`` shapes a prepared statement describes itself with.

Code written for asyncpg builds these values and compares results against them, so their
constructors, attributes, equality and hashing follow asyncpg's documented behaviour; the
driver's text-format codecs (``driver/codecs/``) produce and accept them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Literal, NamedTuple, SupportsFloat, overload

from .serverversion import ServerVersion

__all__ = [
    "Attribute",
    "BitString",
    "Box",
    "Circle",
    "Line",
    "LineSegment",
    "Path",
    "Point",
    "Polygon",
    "Range",
    "ServerVersion",
    "Type",
]


class Type(NamedTuple):
    """A database data type: kind is "scalar", "array", "composite", "range" (asyncpg's)."""

    oid: int
    name: str
    kind: str
    schema: str


class Attribute(NamedTuple):
    """A relation attribute (a result column) and its type."""

    name: str
    type: Type


class Range:
    """An immutable PostgreSQL range; ``Range(empty=True)`` is the empty range.

    A missing bound is infinite and never inclusive, as PostgreSQL normalises it.
    """

    __slots__ = ("_empty", "_lower", "_lower_inc", "_upper", "_upper_inc")

    def __init__(
        self,
        lower: Any = None,
        upper: Any = None,
        *,
        lower_inc: bool = True,
        upper_inc: bool = False,
        empty: bool = False,
    ) -> None:
        self._empty = empty
        if empty:
            self._lower = self._upper = None
            self._lower_inc = self._upper_inc = False
            return
        self._lower = lower
        self._upper = upper
        self._lower_inc = lower is not None and lower_inc
        self._upper_inc = upper is not None and upper_inc

    @property
    def lower(self) -> Any:
        return self._lower

    @property
    def upper(self) -> Any:
        return self._upper

    @property
    def lower_inc(self) -> bool:
        return self._lower_inc

    @property
    def upper_inc(self) -> bool:
        return self._upper_inc

    @property
    def lower_inf(self) -> bool:
        return self._lower is None and not self._empty

    @property
    def upper_inf(self) -> bool:
        return self._upper is None and not self._empty

    @property
    def isempty(self) -> bool:
        return self._empty

    def issubset(self, other: Range) -> bool:
        """Every value in this range is in ``other`` (the empty range is in every range)."""
        if self._empty:
            return True
        if other._empty:
            return False
        return _lower_within(self, other) and _upper_within(self, other)

    def issuperset(self, other: Range) -> bool:
        return other.issubset(self)

    def __bool__(self) -> bool:
        return not self._empty

    def _key(self) -> tuple[Any, Any, bool, bool, bool]:
        return (self._lower, self._upper, self._lower_inc, self._upper_inc, self._empty)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Range):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        if self._empty:
            return "<Range empty>"
        low = "[" if self._lower_inc else "("
        if self._lower is not None:
            low += repr(self._lower)
        high = "" if self._upper is None else repr(self._upper)
        high += "]" if self._upper_inc else ")"
        return f"<Range {low}, {high}>"

    __str__ = __repr__


def _lower_within(inner: Range, outer: Range) -> bool:
    if outer._lower is None:
        return True
    if inner._lower is None:
        return False
    if inner._lower == outer._lower:
        return outer._lower_inc or not inner._lower_inc
    return bool(inner._lower > outer._lower)


def _upper_within(inner: Range, outer: Range) -> bool:
    if outer._upper is None:
        return True
    if inner._upper is None:
        return False
    if inner._upper == outer._upper:
        return outer._upper_inc or not inner._upper_inc
    return bool(inner._upper < outer._upper)


class BitString:
    """An immutable PostgreSQL ``bit``/``varbit`` value: bits packed big-end first in bytes.

    ``BitString('1010 1')`` reads a string of 0/1 (spaces ignored).
    """

    __slots__ = ("_bitlength", "_bytes")

    def __init__(self, bitstring: str | bytes | None = None) -> None:
        bits = [] if not bitstring else _bit_values(bitstring)
        self._bitlength = len(bits)
        number = int("".join(map(str, bits)) or "0", 2) << (-len(bits) % 8)
        self._bytes = number.to_bytes((len(bits) + 7) // 8, "big")

    @classmethod
    def frombytes(cls, bytes_: bytes | None = None, bitlength: int | None = None) -> BitString:
        """The bits of ``bytes_``, the first ``bitlength`` of them (default: all)."""
        if bitlength is None:
            bytes_ = bytes_ or b""
            bitlength = len(bytes_) * 8
        elif bytes_ is None:
            bytes_ = bytes(bitlength // 8 + 1)
        else:
            available = len(bytes_) * 8
            if (
                (available == 0) != (bitlength == 0)
                or bitlength < available - 8
                or bitlength > available
            ):
                raise ValueError("invalid bit length specified")
        result = cls()
        result._bytes = bytes(bytes_)
        result._bitlength = bitlength
        return result

    @property
    def bytes(self) -> bytes:
        return self._bytes

    def as_string(self) -> str:
        """The bits as 0/1, in groups of four separated by spaces (asyncpg's repr)."""
        bits = "".join(str(self._bit(i)) for i in range(self._bitlength))
        return " ".join(bits[i : i + 4] for i in range(0, len(bits), 4))

    def to_int(self, bitorder: Literal["big", "little"] = "big", *, signed: bool = False) -> int:
        """The bits as an int, like ``int.from_bytes``; 'big' puts the first bit highest
        (PostgreSQL's ``bit::int``)."""
        number = int.from_bytes(self._bytes, "big") >> (-self._bitlength % 8)
        if bitorder == "little":
            number = _reverse_bits(number, self._bitlength)
        elif bitorder != "big":
            raise ValueError("bitorder must be either 'big' or 'little'")
        if signed and self._bitlength and number >> (self._bitlength - 1):
            number -= 1 << self._bitlength
        return number

    @classmethod
    def from_int(
        cls,
        x: int,
        length: int,
        bitorder: Literal["big", "little"] = "big",
        *,
        signed: bool = False,
    ) -> BitString:
        """``x`` in ``length`` bits, like ``int.to_bytes`` (OverflowError when it does not
        fit, or is negative and not ``signed``)."""
        if length < 0:
            raise ValueError("length argument must be non-negative")
        if length < x.bit_length():
            raise OverflowError("int too big to convert")
        if x < 0:
            if not signed:
                raise OverflowError("can't convert negative int to unsigned")
            x &= (1 << length) - 1
        if bitorder == "little":
            x = _reverse_bits(x, length)
        elif bitorder != "big":
            raise ValueError("bitorder must be either 'big' or 'little'")
        data = (x << (-length % 8)).to_bytes((length + 7) // 8, "big")
        return cls.frombytes(data, length)

    def _bit(self, i: int) -> int:
        return (self._bytes[i // 8] >> (7 - i % 8)) & 1

    def __getitem__(self, i: int) -> int:
        if isinstance(i, slice):
            raise NotImplementedError("BitString does not support slices")
        if i >= self._bitlength:
            raise IndexError("index out of range")
        return self._bit(i)

    def __len__(self) -> int:
        return self._bitlength

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BitString):
            return NotImplemented
        return (self._bytes, self._bitlength) == (other._bytes, other._bitlength)

    def __hash__(self) -> int:
        return hash((self._bytes, self._bitlength))

    def __repr__(self) -> str:
        return f"<BitString {self.as_string()}>"

    __str__ = __repr__


def _bit_values(bitstring: str | bytes) -> list[int]:
    bits = []
    for i, char in enumerate(bitstring.decode() if isinstance(bitstring, bytes) else bitstring):
        if char == " ":
            continue
        if char not in "01":
            raise ValueError(f"invalid bit value at position {i}")
        bits.append(int(char))
    return bits


def _reverse_bits(number: int, length: int) -> int:
    return int(format(number, "b")[::-1].ljust(length, "0") or "0", 2)


class Point(tuple[float, float]):
    """A PostgreSQL ``point``: an (x, y) tuple of floats."""

    __slots__ = ()

    def __new__(cls, x: SupportsFloat | str | bytes, y: SupportsFloat | str | bytes) -> Point:
        return super().__new__(cls, (float(x), float(y)))

    @property
    def x(self) -> float:
        return self[0]

    @property
    def y(self) -> float:
        return self[1]

    def __repr__(self) -> str:
        return f"{type(self).__module__}.{type(self).__name__}({tuple.__repr__(self)})"


class Box(tuple[Point, Point]):
    """A PostgreSQL ``box``: its high (upper right) and low (lower left) corners."""

    __slots__ = ()

    def __new__(cls, high: Sequence[float], low: Sequence[float]) -> Box:
        return super().__new__(cls, (Point(*high), Point(*low)))

    @property
    def high(self) -> Point:
        return self[0]

    @property
    def low(self) -> Point:
        return self[1]

    def __repr__(self) -> str:
        return f"{type(self).__module__}.{type(self).__name__}({tuple.__repr__(self)})"


class Line(tuple[float, float, float]):
    """A PostgreSQL ``line``: the coefficients of Ax + By + C = 0."""

    __slots__ = ()

    def __new__(cls, A: float, B: float, C: float) -> Line:
        return super().__new__(cls, (A, B, C))

    @property
    def A(self) -> float:
        return self[0]

    @property
    def B(self) -> float:
        return self[1]

    @property
    def C(self) -> float:
        return self[2]


class LineSegment(tuple[Point, Point]):
    """A PostgreSQL ``lseg``: two end points."""

    __slots__ = ()

    def __new__(cls, p1: Sequence[float], p2: Sequence[float]) -> LineSegment:
        return super().__new__(cls, (Point(*p1), Point(*p2)))

    @property
    def p1(self) -> Point:
        return self[0]

    @property
    def p2(self) -> Point:
        return self[1]

    def __repr__(self) -> str:
        return f"{type(self).__module__}.{type(self).__name__}({tuple.__repr__(self)})"


class Path:
    """A PostgreSQL ``path``: points, open or closed."""

    __slots__ = ("_is_closed", "points")

    def __init__(self, *points: Sequence[float], is_closed: bool = False) -> None:
        self.points = tuple(Point(*p) for p in points)
        self._is_closed = is_closed

    @property
    def is_closed(self) -> bool:
        return self._is_closed

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Path):
            return NotImplemented
        return (self.points, self._is_closed) == (other.points, other._is_closed)

    def __hash__(self) -> int:
        return hash((self.points, self._is_closed))

    def __iter__(self) -> Iterator[Point]:
        return iter(self.points)

    def __len__(self) -> int:
        return len(self.points)

    @overload
    def __getitem__(self, i: int) -> Point: ...
    @overload
    def __getitem__(self, i: slice) -> tuple[Point, ...]: ...
    def __getitem__(self, i: int | slice) -> Point | tuple[Point, ...]:
        return self.points[i]

    def __contains__(self, point: object) -> bool:
        return point in self.points

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(map(repr, self.points))})"


class Polygon(Path):
    """A PostgreSQL ``polygon``: a path that is always closed."""

    __slots__ = ()

    def __init__(self, *points: Sequence[float]) -> None:
        super().__init__(*points, is_closed=True)


class Circle(tuple[Point, float]):
    """A PostgreSQL ``circle``: centre and radius."""

    __slots__ = ()

    def __new__(cls, center: Sequence[float], radius: float) -> Circle:
        return super().__new__(cls, (Point(*center), radius))

    @property
    def center(self) -> Point:
        return self[0]

    @property
    def radius(self) -> float:
        return self[1]
