"""The schema is idempotent and the nearest queries are answered by the GiST index."""

from __future__ import annotations

import json
from typing import Any

from app.load import apply_schema, schema_sql
from app.sites import CANDIDATES_SQL, NEAREST_SQL
from tests.app.conftest import DB, ROOT


def _plan_nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    nodes = [plan]
    for child in plan.get("Plans", []):
        nodes += _plan_nodes(child)
    return nodes


async def _explain(conn: Any, sql: str, *args: object) -> list[dict[str, Any]]:
    # EXPLAIN of a parameterised statement: prepare it with typed parameters first.
    await conn.execute(
        "PREPARE q(float8, float8, int" + (", float8" if len(args) == 4 else "") + ") AS " + sql
    )
    try:
        placeholders = ", ".join(repr(a) for a in args)
        raw = await conn.fetchval(f"EXPLAIN (FORMAT JSON) EXECUTE q({placeholders})")
    finally:
        await conn.execute("DEALLOCATE q")
    doc = json.loads(raw) if isinstance(raw, str) else raw
    return _plan_nodes(doc[0]["Plan"])


def test_sql_file_is_the_query_the_app_runs() -> None:
    on_disk = (ROOT / "sql" / "nearest.sql").read_text()
    body = "\n".join(line for line in on_disk.splitlines() if not line.startswith("--"))
    assert body.strip().rstrip(";") == NEAREST_SQL.strip()
    assert "ORDER BY location <->" in NEAREST_SQL and "LIMIT $3" in NEAREST_SQL
    # no second sort key: that would turn the index-ordered scan into a sort of every row
    order_by = NEAREST_SQL.split("ORDER BY", 1)[1].split("LIMIT", 1)[0].strip()
    assert order_by == "location <-> ST_SetSRID(ST_MakePoint($1, $2), 4326)::geography"


async def test_schema_applies_twice_without_harm(scratch_db: DB) -> None:
    conn = await scratch_db.connect()
    try:
        await apply_schema(conn)
        await conn.execute(
            "INSERT INTO whc_sites (id_no, name_en, category, date_inscribed, location) "
            "VALUES (1, 'Kept', 'Natural', 1990, 'SRID=4326;POINT(1 2)')"
        )
        await conn.execute(schema_sql())
        assert await conn.fetchval("SELECT name_en FROM whc_sites WHERE id_no = 1") == "Kept"
        indexes = await conn.fetch(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'whc_sites'"
        )
        gist = [r for r in indexes if "USING gist (location)" in r[1]]
        assert len(gist) == 1 and gist[0][0] == "whc_sites_location_gist"
        kind = await conn.fetchval(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
            "WHERE attrelid = 'whc_sites'::regclass AND attname = 'location'"
        )
        assert kind == "geography(Point,4326)"
    finally:
        await conn.close()


async def test_nearest_query_is_an_index_ordered_scan(sites_db: DB) -> None:
    conn = await sites_db.connect()
    try:
        nodes = await _explain(conn, NEAREST_SQL, 2.35, 48.85, 10)
    finally:
        await conn.close()
    types = [n["Node Type"] for n in nodes]
    assert "Sort" not in types and "Seq Scan" not in types, types
    scan = next(n for n in nodes if n["Node Type"] == "Index Scan")
    assert scan["Index Name"] == "whc_sites_location_gist"
    assert "<->" in scan["Order By"]


async def test_candidate_query_uses_the_index_for_both_parts(sites_db: DB) -> None:
    conn = await sites_db.connect()
    try:
        nodes = await _explain(conn, CANDIDATES_SQL, 2.35, 48.85, 50, 1600.0)
    finally:
        await conn.close()
    scans = [n for n in nodes if n["Node Type"] == "Index Scan"]
    assert "Seq Scan" not in [n["Node Type"] for n in nodes]
    assert len(scans) == 2
    assert all(n["Index Name"] == "whc_sites_location_gist" for n in scans)
    assert any("<->" in n.get("Order By", "") for n in scans)
    assert any("&&" in n.get("Index Cond", "") for n in scans)
