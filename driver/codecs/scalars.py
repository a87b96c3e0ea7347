"""Text-format codecs for the non-temporal scalar types (numbers, strings, bytea, uuid, json, net).

Decoders take the column's raw bytes and are plain callables picked once per column, so the
per-value cost is one call: `int(b"12")` and `float(b"NaN")` parse bytes directly. Encoders
return the text PostgreSQL's input function accepts for a Python value of the parameter's type,
and refuse other Python types as asyncpg's encoders do (a str for an integer, a boolean, bytea
or a date is a TypeError with asyncpg's message; query.encode() makes it a DataError). Types
whose input asyncpg parses from a str too (numeric, uuid, inet, cidr, JSON text) take one.
"""

from __future__ import annotations

import binascii
import ipaddress
import json
import math
import operator
import re
import struct
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from .arrays import CodecError, takes_sequences

# -- decoders ---------------------------------------------------------------------------------

decode_bool = {b"t": True, b"f": False}.__getitem__
decode_text = bytes.decode  # UTF-8, the client_encoding the driver asks for
_json_decode = json.JSONDecoder().decode


def decode_json(data: bytes) -> Any:
    """json/jsonb text parsed to Python objects (asyncpg leaves it as str; the issue asks for
    objects). Decoding the UTF-8 first skips json.loads' encoding sniffing, twice as fast."""
    return _json_decode(data.decode())


_F32 = struct.Struct("<f")


def decode_float4(data: bytes) -> float:
    """Round to the nearest float32, as asyncpg does: the server prints the shortest text that
    reads back as the same float4 ("0.1"), and asyncpg's binary path widens that float4 to
    0.10000000149011612."""
    return float(_F32.unpack(_F32.pack(float(data)))[0])


def decode_numeric(data: bytes) -> Decimal:
    """Exact at any precision: Decimal() from a string does not round to the context.

    An integer ending in whole groups of four zeros has them as the exponent, as asyncpg's
    value has: the binary numeric it reads holds base-10000 digits and drops trailing zero
    ones, so 10000 is ``Decimal('1E+4')`` and 1E1000 stays ``(0, (1,), 1000)``, not a
    thousand zero digits. Equal values either way, but another ``str()`` and ``as_tuple()``.
    The test of the last byte keeps the usual value to one comparison more.
    """
    if data[-1] == 48 and data.endswith(b"0000") and 46 not in data:  # "0", no "."
        digits = data.rstrip(b"0")
        groups = (len(data) - len(digits)) // 4
        if digits not in (b"", b"-"):  # 0 has no digit to keep; its own text is exact
            sign, kept, exponent = Decimal(data[: len(data) - 4 * groups].decode()).as_tuple()
            return Decimal((sign, kept, int(exponent) + 4 * groups))
    return Decimal(data.decode("ascii"))


def decode_bytea(data: bytes) -> bytes:
    r"""Accept both bytea_output formats: hex ('\x00ff', the default) and escape ('a\000\\')."""
    if data[:2] == b"\\x":
        return binascii.unhexlify(data[2:])
    return _unescape_bytea(data)


_BYTEA_ESCAPE = re.compile(rb"\\(\\|[0-7]{3})")


def _unescape_bytea(data: bytes) -> bytes:
    def sub(m: re.Match[bytes]) -> bytes:
        code = m.group(1)
        return b"\\" if code == b"\\" else bytes((int(code, 8),))

    return _BYTEA_ESCAPE.sub(sub, data)


def decode_char(data: bytes) -> bytes:
    """The one-byte "char" type, returned as bytes like asyncpg does.

    charout prints bytes >= 0x80 as a backslash and three octal digits, and the zero byte as ''
    (asyncpg reads b'\\x00' for it from the binary format).
    """
    if len(data) == 4 and data[:1] == b"\\":
        return bytes((int(data[1:], 8),))
    return data[:1] or b"\x00"


_UUID = uuid.UUID
_new_object = object.__new__
_set_slot = object.__setattr__
_SAFE_UNKNOWN = uuid.SafeUUID.unknown


def decode_uuid(data: bytes) -> uuid.UUID:
    """Fill the UUID's two slots directly, as UUID.__init__ itself does, skipping its argument
    checks: uuid_out always prints the canonical 36 characters, and this is 2.5x faster."""
    value = _new_object(_UUID)
    _set_slot(value, "int", int(data.replace(b"-", b""), 16))
    _set_slot(value, "is_safe", _SAFE_UNKNOWN)
    return value


def decode_inet(
    data: bytes,
) -> (
    ipaddress.IPv4Address
    | ipaddress.IPv6Address
    | ipaddress.IPv4Interface
    | ipaddress.IPv6Interface
):
    """inet prints the prefix only when it is not the full width, and asyncpg returns an address
    in that case and an interface (host bits plus prefix) otherwise."""
    text = data.decode("ascii")
    if "/" in text:
        return ipaddress.ip_interface(text)
    return ipaddress.ip_address(text)


def decode_cidr(data: bytes) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(data.decode("ascii"))


def decode_snapshot(data: bytes) -> tuple[int, int, tuple[int, ...]]:
    """txid_snapshot / pg_snapshot text ('10:20:10,14') as asyncpg's (xmin, xmax, (xip, ...))."""
    xmin, xmax, xip = data.split(b":")
    return int(xmin), int(xmax), tuple(int(x) for x in xip.split(b",") if x)


def encode_snapshot(value: Any) -> str:
    """(xmin, xmax, (xip, ...)) -> 'xmin:xmax:xip,...'; a str is its text already."""
    if isinstance(value, str):
        return value
    xmin, xmax, xip = value
    ids = ",".join(str(as_integer(x)) for x in xip)
    return f"{as_integer(xmin)}:{as_integer(xmax)}:{ids}"


def decode_int_vector(data: bytes) -> list[int]:
    """int2vector and oidvector print as space-separated numbers ('1 2 3')."""
    return [int(item) for item in data.split()]


def decode_pg_lsn(data: bytes) -> int:
    """A WAL position 'HI/LO' (two hex halves) as the int asyncpg returns."""
    high, _, low = data.partition(b"/")
    return (int(high, 16) << 32) | int(low, 16)


# -- encoders (value -> text) ----------------------------------------------------------------


def encode_bool(value: Any) -> str:
    if not isinstance(value, bool):
        raise TypeError(f"a boolean is required (got type {type(value).__name__})")
    return "t" if value else "f"


def as_integer(value: Any) -> int:
    """asyncpg's integer argument: an int, or anything else with __int__ (a float or a
    Decimal is truncated, as asyncpg does: ``int(obj)``); a str is refused.

    Raises:
        TypeError: ``an integer is required (got type str)``.
    """
    if type(value) is int:
        return value
    if isinstance(value, str | bytes | bytearray) or not hasattr(type(value), "__int__"):
        if hasattr(type(value), "__index__"):
            return operator.index(value)
        raise TypeError(f"an integer is required (got type {type(value).__name__})")
    return int(value)


def encode_int(value: Any) -> str:
    """Any object with __int__ or __index__ (int, bool, IntEnum, numpy ints, float), as
    asyncpg's integer encoders take them."""
    return str(as_integer(value))


def _bounded_int(bits: int, signed: bool = True) -> Callable[[Any], str]:
    """encode_int with the type's range checked on the client, with asyncpg's message
    ("value out of int16 range"); an integral Decimal is taken as asyncpg takes it."""
    low, high = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    name = f"{'' if signed else 'u'}int{bits}"

    def encode(value: Any) -> str:
        number = as_integer(value)
        if not low <= number <= high:
            raise OverflowError(f"value out of {name} range")
        return str(number)

    return encode


encode_int2 = _bounded_int(16)
encode_int4 = _bounded_int(32)
encode_int8 = _bounded_int(64)
encode_uint32 = _bounded_int(32, signed=False)


def decode_tid(data: bytes) -> tuple[int, int]:
    block, _, offset = data.strip(b"()").partition(b",")
    return int(block), int(offset)


@takes_sequences
def encode_tid(value: Any) -> str:
    if not isinstance(value, list | tuple):
        raise TypeError(f"list or tuple expected (got type {type(value)})")
    if len(value) != 2:
        raise ValueError("invalid number of elements in tid tuple, expecting 2")
    block, offset = (operator.index(v) for v in value)
    if not 0 <= block <= 2**32 - 1:
        raise OverflowError("tuple id block value out of uint32 range")
    if not 0 <= offset <= 2**16 - 1:
        raise OverflowError("tuple id offset value out of uint16 range")
    return f"({block},{offset})"


def decode_void(data: bytes) -> None:
    """void (a function returning nothing) prints as '': None, as asyncpg."""
    return None


def encode_float(value: Any) -> str:
    """repr() is the shortest text that reads back as the same double; anything with
    __float__ is taken (a str is not: asyncpg's "must be real number, not str")."""
    if type(value) is not float:
        if isinstance(value, int):
            return str(int(value))  # exact decimal text; the server rounds it once
        if isinstance(value, str | bytes | bytearray) or not (
            hasattr(type(value), "__float__") or hasattr(type(value), "__index__")
        ):
            raise TypeError(f"must be real number, not {type(value).__name__}")
        value = float(value)
    if value - value == 0.0:  # finite
        return repr(value)
    if value != value:
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


_FLOAT4_MAX = 3.4028234663852886e38


def encode_float4(value: Any) -> str:
    """float4: a finite value beyond float32's range is refused, as asyncpg refuses it."""
    text = encode_float(value)
    number = float(value)
    if math.isfinite(number) and abs(number) > _FLOAT4_MAX:
        raise OverflowError("value out of float32 range")
    return text


def encode_numeric(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, Decimal):
        if value.is_snan():
            return "NaN"  # numeric has one NaN; asyncpg sends a signaling one as it
        return str(value)  # 'NaN', 'Infinity', '1E+100': numeric_in reads them all (PG 14+)
    if isinstance(value, float):
        return encode_float(value)
    return str(operator.index(value))


def encode_bytea(value: Any) -> str:
    """Any bytes-like object (buffer protocol), as asyncpg; a str or an int is refused."""
    if isinstance(value, str | int):
        raise TypeError(f"a bytes-like object is required, not '{type(value).__name__}'")
    try:
        return "\\x" + memoryview(value).tobytes().hex()
    except TypeError:
        raise TypeError(f"a bytes-like object is required, not '{type(value).__name__}'") from None


def encode_char(value: Any) -> str:
    r"""The inverse of decode_char: bytes >= 0x80 as '\ooo', the zero byte as ''."""
    if isinstance(value, str | int):
        raise TypeError(f"a bytes-like object is required, not '{type(value).__name__}'")
    raw = bytes(value)
    if len(raw) != 1:
        raise CodecError(f'"char" holds exactly one byte, got {raw!r}')
    code = raw[0]
    if code == 0:
        return ""
    if code >= 0x80:
        return f"\\{code:03o}"
    return raw.decode("ascii")


def encode_int_vector(value: Any) -> str:
    return " ".join(str(as_integer(item)) for item in value)


def encode_pg_lsn(value: Any) -> str:
    number = as_integer(value)
    return f"{number >> 32:X}/{number & 0xFFFFFFFF:X}"


def encode_json(value: Any) -> str:
    """A str is taken to be JSON text already (asyncpg's convention); anything else is dumped."""
    if isinstance(value, str):
        return value
    return json.dumps(value)


def encode_uuid(value: Any) -> str:
    """A str (uuid_in checks it), or a UUID-like object with ``.bytes``, as asyncpg."""
    if isinstance(value, str):
        return value
    if isinstance(value, uuid.UUID):
        return str(value)
    if not hasattr(value, "bytes"):
        raise TypeError(f"'{type(value).__name__}' object has no attribute 'bytes'")
    return str(uuid.UUID(bytes=bytes(value.bytes)))


def encode_str(value: Any) -> str:
    """For inet, cidr: their str() is PostgreSQL's input syntax."""
    return value if isinstance(value, str) else str(value)


def encode_text(value: Any) -> str:
    """text, varchar, bpchar, name: a str only, as asyncpg ("expected str, got int")."""
    if not isinstance(value, str):
        raise TypeError(f"expected str, got {type(value).__name__}")
    return value
