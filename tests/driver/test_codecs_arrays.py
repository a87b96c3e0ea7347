"""Property tests of the array text format: what format_array writes, parse_array reads back, and
the server agrees on both directions (for a bounded number of examples)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import pq

from driver.codecs import default_registry, format_array, parse_array
from tools.pgcluster import Cluster

# NUL cannot be in a PostgreSQL text value; surrogates cannot be UTF-8
_chars = st.characters(exclude_characters="\x00", exclude_categories=["Cs"])
_tricky = st.sampled_from(
    ["NULL", "null", "Null", "", " ", '"', "\\", "{", "}", ",", "a,b", "{1,2}", '\\"', "'", "\t"]
)
TEXTS = st.one_of(st.none(), _tricky, st.text(_chars, max_size=12))
INTS = st.one_of(st.none(), st.integers(min_value=-(2**63), max_value=2**63 - 1))


@st.composite
def arrays(draw: st.DrawFn, elements: st.SearchStrategy[Any]) -> list[Any]:
    """Rectangular nested lists (PostgreSQL arrays cannot be ragged) of 1 to 3 dimensions."""
    if draw(st.integers(0, 9)) == 0:
        return []
    shape = draw(st.lists(st.integers(1, 4), min_size=1, max_size=3))

    def build(dims: list[int]) -> list[Any]:
        if len(dims) == 1:
            return draw(st.lists(elements, min_size=dims[0], max_size=dims[0]))
        return [build(dims[1:]) for _ in range(dims[0])]

    return build(shape)


def _text(value: Any) -> str:
    return str(value)


@given(arrays(TEXTS))
def test_text_arrays_round_trip_locally(value: list[Any]) -> None:
    assert parse_array(format_array(value, _text).encode(), bytes.decode) == value


@given(arrays(INTS))
def test_int_arrays_round_trip_locally(value: list[Any]) -> None:
    assert parse_array(format_array(value, _text).encode(), int) == value


@given(arrays(TEXTS), st.sampled_from([":", ";"]))
def test_other_delimiters_round_trip_locally(value: list[Any], delimiter: str) -> None:
    text = format_array(value, _text, delimiter).encode()
    assert parse_array(text, bytes.decode, delimiter.encode()) == value


@pytest.fixture(scope="module")
def raw(pg: Cluster) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(pg.dsn("trust_user"), sslmode="disable", autocommit=True) as conn:
        yield conn


def _server_echo(conn: psycopg.Connection[Any], cast: str, value: list[Any]) -> tuple[int, bytes]:
    """Send the value as the driver would, untyped, and return the server's own text for it."""
    oid, text = default_registry.encode(value)
    res = conn.pgconn.exec_params(f"select $1::{cast}".encode(), [text], [oid])
    assert res.status == pq.ExecStatus.TUPLES_OK, (res.error_message, text)
    return res.ftype(0), res.get_value(0, 0) or b""


SERVER = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SERVER
@given(value=arrays(TEXTS))
def test_text_arrays_round_trip_through_the_server(
    raw: psycopg.Connection[Any], value: list[Any]
) -> None:
    oid, out = _server_echo(raw, "text[]", value)
    assert default_registry.decoder(oid)(out) == value


@SERVER
@given(value=arrays(INTS))
def test_int_arrays_round_trip_through_the_server(
    raw: psycopg.Connection[Any], value: list[Any]
) -> None:
    oid, out = _server_echo(raw, "int8[]", value)
    assert default_registry.decoder(oid)(out) == value


@SERVER
@given(value=arrays(TEXTS))
def test_parser_reads_arrays_the_server_builds_itself(
    raw: psycopg.Connection[Any], value: list[Any]
) -> None:
    """Independent of format_array: every element travels as its own text parameter and the
    server assembles the array with ARRAY[...] constructors, then prints it."""
    params: list[bytes | None] = []

    def constructor(items: list[Any]) -> str:
        parts = []
        for item in items:
            if isinstance(item, list):
                parts.append(constructor(item))
            else:
                params.append(None if item is None else item.encode())
                parts.append(f"${len(params)}::text")
        return "array[" + ",".join(parts) + "]"

    sql = f"select {constructor(value)}::text[]"
    res = raw.pgconn.exec_params(sql.encode(), params, [0] * len(params))
    assert res.status == pq.ExecStatus.TUPLES_OK, res.error_message
    assert default_registry.decoder(res.ftype(0))(res.get_value(0, 0) or b"") == value
