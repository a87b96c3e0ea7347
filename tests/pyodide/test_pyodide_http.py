"""driver.http in Pyodide in headless Chromium: the browser's fetch() posts to the real proxy's
/sql (a cross-origin request, so CORS preflight included) and the rows equal the CPython socket
driver's; a Postgres error arrives as the same exception class."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest

import driver
from tests.proxy.test_sql_http import SQLProxy, start_sql_proxy
from tools.pgcluster import Cluster

if TYPE_CHECKING:
    from conftest import LoadedPage, PlaygroundDB, Server

NEAREST = """
SELECT id_no, name_en, ST_AsText(location) AS wkt,
       (location <-> ST_MakePoint($1, $2)::geography)::float8 AS distance_m
FROM whc_sites
ORDER BY location <-> ST_MakePoint($1, $2)::geography
LIMIT 10
"""

BROWSER_CODE = """
import json, sys
import driver, driver.http

sql = driver.http.connect(DSN, endpoint=URL)
rows = await sql.fetch(NEAREST, 2.3522, 48.8566)
tx = await sql.transaction(
    ["select count(*) from whc_sites", ("select $1::int * 2 as d", [21])],
    isolation="repeatable_read", readonly=True,
)
try:
    await sql.fetchval("select 1 / 0")
    error = None
except driver.PostgresError as exc:
    error = [type(exc).__name__, exc.sqlstate]
await sql.close()
json.dumps({
    "platform": sys.platform,
    "rows": [list(r.values()) for r in rows],
    "tx": [tx[0][0][0], tx[1][0]["d"]],
    "error": error,
})
"""


@pytest.fixture(scope="module")
def page_sqlp(pg: Cluster, playground_server: Server) -> Iterator[SQLProxy]:
    """A proxy whose /sql admits the playground page's origin (CORS)."""
    page = urlsplit(playground_server.url)
    p = start_sql_proxy(pg, SQL_HTTP_CORS_ORIGINS=f"{page.scheme}://{page.netloc}")
    yield p
    p.proc.stop()


async def test_query_over_http_in_chromium_equals_cpython(
    loaded_page: LoadedPage, playground_db: PlaygroundDB, page_sqlp: SQLProxy
) -> None:
    dsn = playground_db.dsn("scram_user")
    code = f"DSN = {dsn!r}\nURL = {page_sqlp.url!r}\nNEAREST = {NEAREST!r}\n" + BROWSER_CODE
    mark = page_sqlp.proc.mark()
    browser = await loaded_page.python(code)

    async with await driver.connect(dsn, sslmode="disable") as conn:
        expected = [list(r.values()) for r in await conn.fetch(NEAREST, 2.3522, 48.8566)]
        count = await conn.fetchval("select count(*) from whc_sites")
    assert browser["platform"] == "emscripten"
    assert browser["rows"] == json.loads(json.dumps(expected))
    assert len(browser["rows"]) == 10 and browser["rows"][0][2].startswith("POINT(")
    assert browser["tx"] == [count, 42]
    assert browser["error"] == ["DivisionByZeroError", "22012"]
    # the requests really went over /sql, from the browser
    line = await page_sqlp.proc.await_line(r"sql \d+ .*status=200 queries=1 rows=10", start=mark)
    assert "target=127.0.0.1:" in line
    assert any(u == page_sqlp.url for u in loaded_page.requests)
