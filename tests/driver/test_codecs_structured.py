"""The text formats of records, ranges, multiranges and geometric values, as pure functions
(the server side of each is exercised in test_codecs_types.py)."""

from __future__ import annotations

import pytest

from driver.codecs import CodecError
from driver.codecs.geometry import decode_path, decode_polygon, encode_path
from driver.codecs.structured import (
    composite_encoder,
    multirange_decoder,
    parse_range,
    parse_record,
    quote_field,
    range_encoder,
)
from driver.types import Path, Range


def test_record_fields_quoted_escaped_empty_and_null() -> None:
    assert parse_record(b'(1,,"","a ""b"" \\\\c",x)') == [b"1", None, b"", b'a "b" \\c', b"x"]
    assert parse_record(b"()") == []
    with pytest.raises(CodecError):
        parse_record(b"1,2")
    with pytest.raises(CodecError):
        parse_record(b'(1,"open)')


def test_range_bounds() -> None:
    assert parse_range(b"empty") is None
    assert parse_range(b"[1,5)") == (b"1", b"5", True, False)
    assert parse_range(b"(,5]") == (None, b"5", False, True)
    assert parse_range(b'["a,b","c\\"d")') == (b"a,b", b'c"d', True, False)
    with pytest.raises(CodecError):
        parse_range(b"1,5")


def test_multirange_splits_on_top_level_commas_only() -> None:
    decode = multirange_decoder(bytes.decode)
    assert decode(b'{["a,)",b), [c,d]}') == [Range("a,)", "b"), Range("c", "d", upper_inc=True)]
    assert decode(b"{}") == []


def test_encoders_quote_what_the_parsers_would_misread() -> None:
    assert quote_field("") == '""'
    assert quote_field("a b") == '"a b"'
    assert quote_field('x"y') == '"x\\"y"'
    encode = range_encoder(str)
    assert encode(Range("a,b", None)) == '["a,b",)'
    assert parse_range(encode(Range("a,b", "z")).encode()) == (b"a,b", b"z", True, False)
    with pytest.raises(CodecError, match="expected 0, 1 or 2 elements"):
        encode((1, 2, 3))
    composite = composite_encoder(("a", "b"), [None, None])
    assert composite(("x y", None)) == '("x y",)'
    assert parse_record(composite(('q"', "")).encode()) == [b'q"', b""]
    with pytest.raises(CodecError, match="'c' is not a valid element"):
        composite({"c": 1})


def test_paths_open_and_closed() -> None:
    closed = decode_path(b"((1,2),(3,4))")
    assert closed.is_closed and list(closed) == [(1.0, 2.0), (3.0, 4.0)]
    assert not decode_path(b"[(1,2),(3,4)]").is_closed
    assert encode_path(Path((1, 2), (3, 4))) == "[(1.0,2.0),(3.0,4.0)]"
    assert decode_polygon(b"((0,0),(1,1),(1,0))").is_closed
