"""The text formats of composite values, ranges and multiranges (record_out, range_out,
multirange_out in the PostgreSQL sources) <-> Python values.

A composite's text is ``(1,"a b",)``: fields between parentheses, an empty unquoted field is
NULL, a quoted one may hold anything with ``\\`` escapes or doubled quotes. A range's is
``[1,5)`` or ``empty``, its bounds quoted the same way, an empty bound infinite; a
multirange's is ``{[1,3),[5,7)}``. Parsing works on the bytes from the server, so field
decoders get bytes as they do for plain columns.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..errors import UnsupportedClientFeatureError
from ..types import Range
from .arrays import CodecError, Decoder, TextEncoder, takes_sequences

__all__ = [
    "SchemaChanged",
    "composite_decoder",
    "composite_encoder",
    "decode_anonymous_record",
    "decode_hstore",
    "encode_hstore",
    "multirange_decoder",
    "multirange_encoder",
    "parse_range",
    "parse_record",
    "quote_field",
    "range_decoder",
    "range_encoder",
    "refuse_anonymous_record",
]

_SPECIAL_FIELD = frozenset('"\\,()[]{} \t\n\r\v\f')


def _field(data: bytes, i: int, stops: bytes) -> tuple[bytes | None, int]:
    """One field or bound starting at ``i``: (its bytes or None when empty and unquoted, the
    index of the byte that ended it, one of ``stops``)."""
    out = bytearray()
    quoted = False
    n = len(data)
    while i < n:
        c = data[i]
        if c == 0x22:  # '"'
            if quoted and i + 1 < n and data[i + 1] == 0x22:
                out.append(0x22)
                i += 2
                continue
            quoted = not quoted
            i += 1
            continue
        if c == 0x5C:  # backslash
            if i + 1 >= n:
                raise CodecError(f"unterminated escape in {data!r}")
            out.append(data[i + 1])
            i += 2
            continue
        if not quoted and c in stops:
            break
        out.append(c)
        i += 1
    else:
        raise CodecError(f"unterminated value in {data!r}")
    if not out and data[i - 1 : i] != b'"':
        return None, i
    return bytes(out), i


def parse_record(data: bytes) -> list[bytes | None]:
    """A composite's text -> its fields' text (None for NULL).

    Raises:
        CodecError: not a record literal.
    """
    data = data.strip()
    if len(data) < 2 or data[0] != 0x28 or data[-1] != 0x29:
        raise CodecError(f"malformed record literal: {data!r}")
    if data == b"()":
        return []
    fields: list[bytes | None] = []
    i = 1
    while True:
        value, i = _field(data, i, b",)")
        fields.append(value)
        if data[i] == 0x29:
            if i != len(data) - 1:
                raise CodecError(f"malformed record literal: {data!r}")
            return fields
        i += 1


def parse_range(data: bytes) -> tuple[bytes | None, bytes | None, bool, bool] | None:
    """A range's text -> (lower, upper, lower_inc, upper_inc), None for 'empty'.

    Raises:
        CodecError: not a range literal.
    """
    data = data.strip()
    if data.lower() == b"empty":
        return None
    if len(data) < 3 or data[0] not in b"[(" or data[-1] not in b")]":
        raise CodecError(f"malformed range literal: {data!r}")
    lower, i = _field(data, 1, b",")
    upper, j = _field(data, i + 1, b")]")
    if j != len(data) - 1:
        raise CodecError(f"malformed range literal: {data!r}")
    return lower, upper, data[0] == 0x5B, data[-1] == 0x5D


def _split_multirange(data: bytes) -> list[bytes]:
    data = data.strip()
    if len(data) < 2 or data[0] != 0x7B or data[-1] != 0x7D:
        raise CodecError(f"malformed multirange literal: {data!r}")
    parts: list[bytes] = []
    i, n = 1, len(data) - 1
    while i < n:
        c = data[i]
        if c in b" ,":
            i += 1
            continue
        if data[i : i + 5].lower() == b"empty":
            parts.append(b"empty")
            i += 5
            continue
        start = i
        quoted = False
        i += 1
        while i < n:
            c = data[i]
            if c == 0x5C:
                i += 2
                continue
            if c == 0x22:
                quoted = not quoted
            elif not quoted and c in b")]":
                break
            i += 1
        parts.append(data[start : i + 1])
        i += 1
    return parts


def range_decoder(element: Decoder) -> Decoder:
    """The decoder of a range type whose subtype decodes with ``element``."""

    def decode(data: bytes) -> Range:
        parsed = parse_range(data)
        if parsed is None:
            return Range(empty=True)
        lower, upper, lower_inc, upper_inc = parsed
        return Range(
            None if lower is None else element(lower),
            None if upper is None else element(upper),
            lower_inc=lower_inc,
            upper_inc=upper_inc,
        )

    return decode


def multirange_decoder(element: Decoder) -> Decoder:
    decode_range = range_decoder(element)

    def decode(data: bytes) -> list[Range]:
        return [decode_range(part) for part in _split_multirange(data)]

    return decode


def quote_field(text: str) -> str:
    """A bound's or field's text as record_in/range_in read it back unchanged."""
    if text and not any(c in _SPECIAL_FIELD for c in text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _range_text(value: Any, element: TextEncoder) -> str:
    if isinstance(value, Range):
        if value.isempty:
            return "empty"
        lower, upper = value.lower, value.upper
        lower_inc, upper_inc = value.lower_inc, value.upper_inc
    elif isinstance(value, list | tuple):
        if len(value) > 2:
            raise CodecError(f"expected 0, 1 or 2 elements in range (got {len(value)})")
        if not value:
            return "empty"
        lower = value[0]
        upper = value[1] if len(value) == 2 else None
        lower_inc, upper_inc = True, True  # asyncpg reads (1, 9) as [1, 9]
    else:
        raise CodecError(f"list, tuple or Range object expected (got type {type(value)})")
    low = "" if lower is None else quote_field(element(lower))
    high = "" if upper is None else quote_field(element(upper))
    return f"{'[' if lower_inc else '('}{low},{high}{']' if upper_inc else ')'}"


def range_encoder(element: TextEncoder) -> TextEncoder:
    """A Range, or a (lower, upper) sequence as asyncpg takes it, -> range text."""

    def encode(value: Any) -> str:
        return _range_text(value, element)

    return takes_sequences(encode)


def multirange_encoder(element: TextEncoder) -> TextEncoder:
    def encode(value: Any) -> str:
        if not isinstance(value, Sequence) or isinstance(value, str | bytes):
            raise CodecError(f"expected a sequence (got type {type(value)})")
        return "{" + ",".join(_range_text(item, element) for item in value) + "}"

    return encode


class SchemaChanged(CodecError):
    """A composite value with another number of attributes than its type had when this
    connection introspected it: the type was altered since (asyncpg's message)."""


def composite_decoder(
    names: Sequence[str], fields: Sequence[Decoder], make: Callable[[tuple[Any, ...]], Any]
) -> Decoder:
    """The decoder of a composite type: each field through its type's decoder, the values
    made into ``make(tuple)`` (a Record class, as asyncpg returns composites)."""

    def decode(data: bytes) -> Any:
        raw = parse_record(data)
        if len(raw) != len(fields):
            raise SchemaChanged(
                f"unexpected number of attributes of composite type: {len(raw)}, "
                f"expected {len(fields)}"
            )
        return make(tuple(None if v is None else d(v) for d, v in zip(fields, raw, strict=True)))

    return decode


def decode_anonymous_record(data: bytes) -> tuple[str | None, ...]:
    """An anonymous record (``SELECT ROW(1, 'a')``): the text format does not say its
    fields' types, so they come back as str (asyncpg, reading the binary format, types them)."""
    return tuple(None if v is None else v.decode() for v in parse_record(data))


def refuse_anonymous_record(value: Any) -> str:
    raise UnsupportedClientFeatureError("input of anonymous composite types is not supported")


def composite_encoder(names: Sequence[str], fields: Sequence[TextEncoder | None]) -> TextEncoder:
    """A sequence (by position) or a mapping (by attribute name, missing ones NULL) ->
    record text, each field through its type's encoder (str as is when it has none)."""

    def field_text(encode: TextEncoder | None, value: Any) -> str:
        if value is None:
            return ""
        if encode is None:
            text = value if isinstance(value, str) else str(value)
        else:
            text = encode(value)
        return quote_field(text) if text else '""'

    def encode(value: Any) -> str:
        if isinstance(value, Mapping) and not hasattr(value, "_names"):
            for key in value:
                if key not in names:
                    raise CodecError(f"{key!r} is not a valid element of composite type")
            items = [value.get(n) for n in names]
        elif isinstance(value, Sequence) and not isinstance(value, str | bytes):
            items = list(value)
            if len(items) != len(names):
                raise CodecError(f"expected a sequence of {len(names)} elements, got {len(items)}")
        else:
            raise CodecError(f"a sequence or a mapping expected (got type {type(value)})")
        return "(" + ",".join(field_text(e, v) for e, v in zip(fields, items, strict=True)) + ")"

    return takes_sequences(encode)


_HSTORE_PAIR = re.compile(
    rb'\s*"((?:[^"\\]|\\.)*)"\s*=>\s*(?:(NULL)|"((?:[^"\\]|\\.)*)")\s*(,|$)', re.S
)
_HSTORE_UNESCAPE = re.compile(rb"\\(.)", re.S)


def decode_hstore(data: bytes) -> dict[str, str | None]:
    """hstore's text ('"a"=>"1", "b"=>NULL') -> dict, as asyncpg's pg_contrib.hstore codec."""
    out: dict[str, str | None] = {}
    pos = 0
    while pos < len(data):
        match = _HSTORE_PAIR.match(data, pos)
        if match is None:
            raise CodecError(f"malformed hstore value: {data[:80]!r}")
        key = _HSTORE_UNESCAPE.sub(rb"\1", match.group(1)).decode()
        value = match.group(3)
        out[key] = None if match.group(2) else _HSTORE_UNESCAPE.sub(rb"\1", value).decode()
        pos = match.end()
    return out


def encode_hstore(value: Any) -> str:
    """A mapping (or a sequence of pairs) of str -> str/None -> hstore text."""
    items = value.items() if isinstance(value, Mapping) else value

    def quoted(text: Any) -> str:
        return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"') + '"'

    parts = []
    for key, item in items:
        if key is None:
            raise CodecError("null value not allowed in hstore key")
        parts.append(f"{quoted(key)}=>{'NULL' if item is None else quoted(item)}")
    return ", ".join(parts)
