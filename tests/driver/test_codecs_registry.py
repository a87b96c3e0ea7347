"""register() overrides and extends the registry per copy, and the PostGIS point codec works
against real PostGIS output and input."""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from psycopg import pq

from driver.codecs import CodecError, TypeRegistry, default_registry, postgis
from driver.codecs.postgis import Point
from tools.pgcluster import Cluster


@pytest.fixture(scope="module")
def raw(pg: Cluster) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(pg.dsn("trust_user"), sslmode="disable", autocommit=True) as conn:
        yield conn


def _query(
    conn: psycopg.Connection[Any], sql: str, params: list[tuple[int, bytes | None]] | None = None
) -> pq.abc.PGresult:
    """Run with explicit parameter OIDs, as the driver's Parse message declares them."""
    params = params or []
    res = conn.pgconn.exec_params(sql.encode(), [t for _, t in params], [o for o, _ in params])
    if res.status != pq.ExecStatus.TUPLES_OK:
        raise AssertionError((res.error_message or b"").decode())
    return res


def _fetch(conn: psycopg.Connection[Any], reg: TypeRegistry, sql: str) -> Any:
    res = _query(conn, f"select {sql}")
    data = res.get_value(0, 0)
    return None if data is None else reg.decoder(res.ftype(0))(data)


@pytest.fixture(scope="module")
def postgis_oids(raw: psycopg.Connection[Any]) -> dict[str, tuple[int, int, str]]:
    """What Connection.set_type_codec looks up in pg_type before calling register()."""
    sql = "select typname, oid, typarray, typdelim from pg_type where typname like 'geo%'"
    res = _query(raw, sql)
    found = {}
    for row in range(res.ntuples):
        name, oid, array, delim = (res.get_value(row, col) or b"" for col in range(4))
        found[name.decode()] = (int(oid), int(array), delim.decode())
    assert found["geometry"][2] == ":"  # not ',': geometry arrays read '{0101...:0101...}'
    return found


@pytest.fixture
def geo_registry(postgis_oids: dict[str, tuple[int, int, str]]) -> TypeRegistry:
    reg = default_registry.copy()
    for name in ("geography", "geometry"):  # geometry last: Point values infer geometry
        oid, array_oid, delimiter = postgis_oids[name]
        reg.register(
            oid,
            encoder=postgis.encode_point,
            decoder=postgis.decode_point,
            array_oid=array_oid,
            python_type=Point,
            delimiter=delimiter,
        )
    return reg


# -- register() ---------------------------------------------------------------------------


def test_register_overrides_decoding_on_the_copy_only(raw: psycopg.Connection[Any]) -> None:
    reg = default_registry.copy()
    reg.register(23, encoder=None, decoder=lambda b: Decimal(b.decode()) * 2, array_oid=1007)
    assert _fetch(raw, reg, "21::int4") == Decimal(42)
    assert _fetch(raw, reg, "'{1,NULL}'::int4[]") == [Decimal(2), None]
    assert _fetch(raw, default_registry, "21::int4") == 21
    assert reg.encode(5, 23) == (23, b"5")  # the encoder was left alone


def test_register_overrides_encoding_and_inference(raw: psycopg.Connection[Any]) -> None:
    class Cents(int):
        pass

    reg = default_registry.copy()
    reg.register(
        1700,
        encoder=lambda c: f"{int(c) / 100:.2f}".encode(),  # bytes are accepted too
        decoder=None,
        array_oid=1231,
        python_type=Cents,
    )
    assert reg.encode(Cents(1234)) == (1700, b"12.34")
    assert reg.encode([Cents(1), None]) == (1231, b"{0.01,NULL}")
    res = _query(raw, "select $1 + 1", [reg.encode(Cents(250))])
    assert res.get_value(0, 0) == b"3.50"
    assert _fetch(raw, reg, "1.5::numeric") == Decimal("1.5")  # the decoder was left alone
    assert default_registry.encode(Cents(1234)) == (20, b"1234")  # an int elsewhere


def test_unknown_types_decode_as_text_until_registered(raw: psycopg.Connection[Any]) -> None:
    raw.execute("drop type if exists codec_mood; create type codec_mood as enum ('ok', 'meh')")
    res = _query(raw, "select 1, oid, typarray from pg_type where typname = 'codec_mood'")
    oid, array_oid = int(res.get_value(0, 1) or b""), int(res.get_value(0, 2) or b"")
    assert _fetch(raw, default_registry, "'meh'::codec_mood") == "meh"
    assert _fetch(raw, default_registry, "array['ok'::codec_mood]") == "{ok}"
    reg = default_registry.copy()
    reg.register(oid, encoder=None, decoder=bytes.decode, array_oid=array_oid)
    assert _fetch(raw, reg, "array['ok'::codec_mood, NULL]") == ["ok", None]
    sent = _query(raw, "select $1", [reg.encode(["meh", "ok"], array_oid)])
    assert sent.ftype(0) == array_oid and sent.get_value(0, 0) == b"{meh,ok}"


def test_python_type_without_encoder_is_refused() -> None:
    with pytest.raises(ValueError, match="needs an encoder"):
        default_registry.copy().register(99999, encoder=None, decoder=None, python_type=complex)


# -- PostGIS ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("'SRID=4326;POINT(1 2)'::geometry", Point(1.0, 2.0, 4326)),
        ("'POINT(-0.5 1e300)'::geometry", Point(-0.5, 1e300)),
        ("st_makepoint(2.2945, 48.8584)::geography", Point(2.2945, 48.8584, 4326)),
        ("'SRID=3857;POINT Z(1 2 3)'::geometry", Point(1.0, 2.0, 3857, 3.0)),
        ("'POINT M(1 2 4)'::geometry", Point(1.0, 2.0)),
        ("'POINT ZM(1 2 3 4)'::geometry", Point(1.0, 2.0, None, 3.0)),
        ("st_setsrid(st_makepoint(5, 6), 4326)::geography", Point(5.0, 6.0, 4326)),
    ],
)
def test_points_decode_from_postgis_output(
    raw: psycopg.Connection[Any], geo_registry: TypeRegistry, sql: str, expected: Point
) -> None:
    assert _fetch(raw, geo_registry, sql) == expected


def test_big_endian_and_iso_wkb(raw: psycopg.Connection[Any]) -> None:
    """PostGIS prints little-endian, so ask it for XDR explicitly, and for ISO Z/M codes."""
    for sql in (
        "encode(st_asewkb('SRID=4326;POINT Z(1 2 3)'::geometry, 'XDR'), 'hex')",
        "encode(st_asbinary('POINT Z(1 2 3)'::geometry, 'XDR'), 'hex')",
        "encode(st_asbinary('POINT ZM(1 2 3 9)'::geometry, 'NDR'), 'hex')",
    ):
        hex_text = _fetch(raw, default_registry, sql)
        point = postgis.decode_point(hex_text)
        assert (point.x, point.y, point.z) == (1.0, 2.0, 3.0), sql
        assert point.srid == (4326 if "asewkb" in sql else None)


def test_empty_point_is_nan(raw: psycopg.Connection[Any], geo_registry: TypeRegistry) -> None:
    point = _fetch(raw, geo_registry, "'POINT EMPTY'::geometry")
    assert math.isnan(point.x) and math.isnan(point.y)


def test_point_arrays_and_nulls(raw: psycopg.Connection[Any], geo_registry: TypeRegistry) -> None:
    got = _fetch(raw, geo_registry, "array['SRID=4326;POINT(1 2)'::geometry, NULL]")
    assert got == [Point(1.0, 2.0, 4326), None]


def test_other_geometries_are_refused(
    raw: psycopg.Connection[Any], geo_registry: TypeRegistry
) -> None:
    with pytest.raises(CodecError, match="POINT only, got a LINESTRING"):
        _fetch(raw, geo_registry, "'LINESTRING(0 0, 1 1)'::geometry")
    with pytest.raises(CodecError, match="not hex WKB"):
        postgis.decode_point("POINT(1 2)")
    with pytest.raises(TypeError):
        postgis.encode_point((1, 2))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "point", [Point(1.0, 2.0, 4326), Point(-179.5, -89.25), Point(1.0, 2.0, 4326, -3.5)]
)
def test_points_encode_for_geometry_and_geography(
    raw: psycopg.Connection[Any],
    geo_registry: TypeRegistry,
    postgis_oids: dict[str, tuple[int, int, str]],
    point: Point,
) -> None:
    oid, text = geo_registry.encode(point)
    assert oid == postgis_oids["geometry"][0]
    res = _query(raw, "select $1, st_asewkt($1)", [(oid, text)])
    assert geo_registry.decoder(res.ftype(0))(res.get_value(0, 0) or b"") == point
    z = "" if point.z is None else f" {point.z:g}"
    srid = "" if point.srid is None else f"SRID={point.srid};"
    assert res.get_value(0, 1) == f"{srid}POINT({point.x:g} {point.y:g}{z})".encode()

    geog_oid = postgis_oids["geography"][0]
    res = _query(raw, "select $1", [geo_registry.encode(point, geog_oid)])
    assert res.ftype(0) == geog_oid
    back = geo_registry.decoder(geog_oid)(res.get_value(0, 0) or b"")
    assert (back.x, back.y, back.z, back.srid) == (point.x, point.y, point.z, 4326)


def test_point_arrays_encode(
    raw: psycopg.Connection[Any],
    geo_registry: TypeRegistry,
    postgis_oids: dict[str, tuple[int, int, str]],
) -> None:
    points = [Point(1.0, 2.0, 4326), None, Point(3.0, 4.0, 4326)]
    oid, text = geo_registry.encode(points)
    assert oid == postgis_oids["geometry"][1]
    res = _query(raw, "select st_astext(($1)[1]), ($1)[2] is null, $1", [(oid, text)])
    assert (res.get_value(0, 0), res.get_value(0, 1)) == (b"POINT(1 2)", b"t")
    assert geo_registry.decoder(oid)(res.get_value(0, 2) or b"") == points
    geog_array = postgis_oids["geography"][1]
    res = _query(raw, "select $1", [geo_registry.encode(points, geog_array)])
    assert geo_registry.decoder(geog_array)(res.get_value(0, 0) or b"") == points


def test_wkb_bytes_are_what_postgis_writes(raw: psycopg.Connection[Any]) -> None:
    expected = _fetch(raw, default_registry, "'SRID=4326;POINT(1 2)'::geometry")
    assert postgis.encode_point(Point(1.0, 2.0, 4326)) == expected
    head = struct.pack("<BI", 1, 1)
    assert postgis.encode_point(Point(1.0, 2.0)).startswith(head.hex().upper())
