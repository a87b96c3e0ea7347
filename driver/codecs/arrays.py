"""The text format of PostgreSQL arrays: '{1,NULL,"a\\"b"}' <-> nested Python lists.

Follows the "Arrays / Array Value Input and Output" section of the PostgreSQL docs. Most types
use ',' between elements; pg_type.typdelim says otherwise (';' for box, ':' for PostGIS
geometry), so the delimiter is a parameter. Parsing works on the raw bytes from the
server: UTF-8 never puts an ASCII byte inside a multi-byte character, so the structural bytes
are safe to find without decoding first, and element decoders get bytes as for plain columns.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any, cast

from ..errors import DataError, InterfaceError

Decoder = Callable[[bytes], Any]
TextEncoder = Callable[[Any], str]


class CodecError(ValueError):
    """A value the server sent (or the caller passed) has no faithful conversion.

    A ValueError, so code written for asyncpg (which raises ValueError/OverflowError for the same
    values) keeps working; the connection layer may wrap it in its own error type.
    """


class DecodeError(DataError, InterfaceError):
    """A result value no decoder could turn into Python (a bool column holding 'maybe', a
    number past its type): a DataError, as the value is at fault, and an InterfaceError, which
    it was before it had a class of its own. The connection stays usable."""


class ArgumentError(DataError, InterfaceError):
    """A query argument its parameter's codec refuses: asyncpg's DataError ("invalid input
    for query argument $1: ..."), and an InterfaceError, as it was before asyncpg's name.
    Raised before anything is sent, so the connection stays usable."""


_UNESCAPE = re.compile(rb"\\(.)", re.S)


@functools.cache
def _tokens(delimiter: bytes) -> re.Pattern[bytes]:
    """A quoted element (group 1 = its body), a brace, a delimiter, or an unquoted element."""
    d = re.escape(delimiter)
    return re.compile(rb'"((?:[^"\\]|\\.)*)"|[{}]|' + d + rb'|[^{}"' + d + rb"]+", re.S)


@functools.cache
def _needs_quotes(delimiter: str) -> re.Pattern[str]:
    """array_out quotes elements holding the delimiter, braces, quotes, backslashes or spaces."""
    return re.compile(r'[{}"\\ \t\n\r\v\f' + re.escape(delimiter) + "]")


def parse_array(data: bytes, decode: Decoder, delimiter: bytes = b",") -> list[Any]:
    """Turn an array's text output into (nested) lists, decoding each element with `decode`.

    Lower bounds ('[0:2]={1,2,3}') are dropped, as asyncpg drops them: Python lists start at 0.

    Raises:
        CodecError: the text is not an array literal.
    """
    if data[:1] == b"[":
        data = data[data.find(b"=") + 1 :]
    if b'"' not in data and b"\\" not in data and data.count(b"{") == 1:
        # the common case: one dimension, nothing quoted
        if data[:1] != b"{" or data[-1:] != b"}":
            raise CodecError(f"not an array literal: {data[:80]!r}")
        inner = data[1:-1]
        if not inner:
            return []
        return [None if item == b"NULL" else decode(item) for item in inner.split(delimiter)]
    return _parse_nested(data, decode, delimiter)


def _parse_nested(data: bytes, decode: Decoder, delimiter: bytes) -> list[Any]:
    stack: list[list[Any]] = []
    current: list[Any] | None = None
    root: list[Any] | None = None
    end = 0
    for match in _tokens(delimiter).finditer(data):
        if match.start() != end:
            break
        end = match.end()
        token = match.group()
        if token == b"{":
            new: list[Any] = []
            if current is None:
                if root is not None:
                    raise CodecError(f"text after the end of an array: {data[:80]!r}")
                root = new
            else:
                current.append(new)
                stack.append(current)
            current = new
        elif current is None:
            break
        elif token == b"}":
            current = stack.pop() if stack else None
        elif token == delimiter:
            continue
        elif match.group(1) is not None:
            current.append(decode(_UNESCAPE.sub(rb"\1", match.group(1))))
        else:
            token = token.strip()
            current.append(None if token.upper() == b"NULL" else decode(token))
    if root is None or current is not None or end != len(data):
        raise CodecError(f"not an array literal: {data[:80]!r}")
    return root


def format_array(
    value: Sequence[Any],
    encode: TextEncoder,
    delimiter: str = ",",
    nests: type | tuple[type, ...] = (list, tuple),
) -> str:
    """Write (nested) lists or tuples as an array literal, encoding elements with `encode`.

    Elements are quoted when array_in would otherwise misread them (empty strings, 'NULL' in any
    case, delimiters, braces, quotes, backslashes, whitespace). The server, not this function,
    rejects ragged nesting.
    """
    needs_quotes = _needs_quotes(delimiter)
    parts: list[str] = []
    for item in value:
        if item is None:
            parts.append("NULL")
        elif isinstance(item, nests):
            parts.append(format_array(cast("Sequence[Any]", item), encode, delimiter, nests))
        else:
            text = encode(item)
            if not text or needs_quotes.search(text) or text.upper() == "NULL":
                text = '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
            parts.append(text)
    return "{" + delimiter.join(parts) + "}"


def array_decoder(decode: Decoder, delimiter: str = ",") -> Decoder:
    """Build the decoder of an array type from its element decoder (done once per type)."""
    raw_delimiter = delimiter.encode()

    def decode_array(data: bytes) -> list[Any]:
        return parse_array(data, decode, raw_delimiter)

    return decode_array


_MAX_DIMS = 6  # PostgreSQL's MAXDIM


def _check_shape(value: Sequence[Any], nests: type | tuple[type, ...], depth: int) -> None:
    """Refuse what array_in would refuse, before sending it, with asyncpg's messages."""
    if depth > _MAX_DIMS:
        raise ValueError(
            f"number of array dimensions ({depth}) exceed the maximum expected ({_MAX_DIMS})"
        )
    inner = [isinstance(item, nests) for item in value if item is not None]
    if any(inner) and not all(inner):
        raise ValueError("non-homogeneous array")
    for item in value:
        if isinstance(item, nests):
            _check_shape(cast("Sequence[Any]", item), nests, depth + 1)


def takes_sequences(encode: TextEncoder) -> TextEncoder:
    """Mark an element encoder whose values are tuples (composites, ranges, points...): in
    its arrays only lists nest, a tuple is an element."""
    encode.takes_sequences = True  # type: ignore[attr-defined]
    return encode


def array_encoder(encode: TextEncoder, delimiter: str = ",") -> TextEncoder:
    """Build the encoder of an array type from its element encoder: any sized iterable but a
    str, bytes or dict is read as the array's elements (as asyncpg); an element its encoder
    refuses is asyncpg's "invalid array element"."""
    nests: type | tuple[type, ...] = (
        list if getattr(encode, "takes_sequences", False) else (list, tuple)
    )

    def encode_element(item: Any) -> str:
        try:
            return encode(item)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"invalid array element: {exc}") from exc

    def encode_array(value: Any) -> str:
        if not isinstance(value, list | tuple):
            if isinstance(value, str | bytes | bytearray | dict) or not isinstance(value, Iterable):
                raise TypeError(
                    f"a sized iterable container expected (got type {type(value).__name__!r})"
                )
            value = list(value)
        _check_shape(value, nests, 1)
        return format_array(value, encode_element, delimiter, nests)

    return encode_array
