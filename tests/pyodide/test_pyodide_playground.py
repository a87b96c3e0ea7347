"""The /playground page as a visitor uses it: the nearest-sites button, their own SQL, and the
limits of the read-only `playground` role (sql/playground_role.sql) as Postgres enforces them.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

import driver

if TYPE_CHECKING:
    from conftest import LoadedPage, PlaygroundDB, Server

ROOT = Path(__file__).resolve().parents[2]


def page_module() -> Any:
    """The Python the page runs, imported here to reuse its exact SQL."""
    spec = importlib.util.spec_from_file_location(
        "pgws_playground", ROOT / "web" / "pyodide" / "pgws_playground.py"
    )
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


async def run(page: LoadedPage, sql: str, args: list[Any] | None = None) -> dict[str, Any]:
    text = await page.page.evaluate("([s, a]) => window.playground.run(s, a)", [sql, args or []])
    result = json.loads(text)
    assert isinstance(result, dict)
    return result


async def test_find_nearest_button_shows_the_nearest_sites(
    loaded_page: LoadedPage, playground_db: PlaygroundDB, playground_server: Server
) -> None:
    page = loaded_page.page
    await page.fill("#lon", "-122.4194")
    await page.fill("#lat", "37.7749")
    await page.evaluate(
        "document.getElementById('results').replaceChildren();"
        "document.getElementById('error').hidden = true"
    )
    await page.click("#nearest")
    await page.wait_for_selector("#results tbody tr, #error:not([hidden])")
    assert await page.is_hidden("#error"), await page.text_content("#error")
    shown = await page.eval_on_selector_all(
        "#results tbody tr", "rows => rows.map(r => [...r.cells].map(c => c.textContent))"
    )
    header = await page.eval_on_selector_all("#results th", "ths => ths.map(t => t.textContent)")

    conn = await driver.connect(
        playground_db.playground_dsn,
        ws_proxy=playground_server.ws_proxy,
        use_secure_websocket=False,
    )
    try:
        expected = await conn.fetch(page_module().NEAREST_SQL, -122.4194, 37.7749, 10)
    finally:
        await conn.close()
    assert header == list(expected[0].keys())
    assert [row[0] for row in shown] == [str(r["id_no"]) for r in expected]
    assert [row[1] for row in shown] == [r["name_en"] for r in expected]
    assert "query" in (await page.text_content("#timing") or "")


async def test_own_sql_runs_as_the_playground_role(loaded_page: LoadedPage) -> None:
    got = await run(loaded_page, "select current_user, current_setting('statement_timeout')")
    assert got["rows"] == [["playground", "2s"]]
    got = await run(loaded_page, "select count(*) from whc_sites where id_no <= $1", [24])
    assert got["rows"] == [[24]]


async def test_rows_beyond_the_limit_are_not_shown(loaded_page: LoadedPage) -> None:
    got = await run(loaded_page, "select generate_series(1, 250) as n")
    assert got["row_count"] == 250
    assert got["truncated"] is True
    assert len(got["rows"]) == 200


async def test_the_role_cannot_write(
    loaded_page: LoadedPage, playground_db: PlaygroundDB, playground_server: Server
) -> None:
    got = await run(loaded_page, "delete from whc_sites")
    assert got["sqlstate"] == "25006", got  # read_only_sql_transaction
    # A visitor holds the password and can skip the page: without the read-only transaction,
    # the role's missing privilege still stops the write.
    conn = await driver.connect(
        playground_db.playground_dsn,
        ws_proxy=playground_server.ws_proxy,
        use_secure_websocket=False,
    )
    try:
        await conn.execute("set default_transaction_read_only = off")
        try:
            await conn.execute("delete from whc_sites")
        except driver.PostgresError as exc:
            sqlstate = exc.sqlstate
        else:
            sqlstate = None
    finally:
        await conn.close()
    assert sqlstate == "42501"  # insufficient_privilege


async def test_the_role_cannot_read_other_tables(loaded_page: LoadedPage) -> None:
    got = await run(loaded_page, "select * from secret")
    assert got["sqlstate"] == "42501", got  # insufficient_privilege


async def test_statement_timeout_is_enforced(loaded_page: LoadedPage) -> None:
    got = await run(loaded_page, "select pg_sleep(5)")
    assert got["sqlstate"] == "57014", got  # query_canceled, after the role's 2 s
    got = await run(loaded_page, "select 1 as still_usable")
    assert got["rows"] == [[1]]


async def test_errors_are_shown_on_the_page(loaded_page: LoadedPage) -> None:
    page = loaded_page.page
    await page.evaluate("window.playground.editors.sql.setValue('select * from secret')")
    await page.evaluate("document.getElementById('error').hidden = true")
    await page.click("#run")
    await page.wait_for_selector("#error:not([hidden])")
    assert "SQLSTATE 42501" in (await page.text_content("#error") or "")


async def test_the_server_serves_only_what_the_page_needs(playground_server: Server) -> None:
    async with httpx.AsyncClient(base_url=playground_server.url) as client:
        config = (await client.get("config.json")).json()
        assert config["use_secure_websocket"] is False
        assert config["ws_proxy"] == playground_server.ws_proxy
        assert (await client.get("pyodide/pyodide.asm.wasm")).headers["content-type"] == (
            "application/wasm"
        )
        assert (
            (await client.get("pyodide/pyodide.mjs"))
            .headers["content-type"]
            .startswith("text/javascript")
        )
        for probe in ("pyodide/..%2F..%2Fpackage.json", "pyodide/package-lock.json", "pyodide/x"):
            assert (await client.get(probe)).status_code == 404, probe
        redirect = await client.get(playground_server.url.rstrip("/"))
        assert redirect.status_code == 308
        assert redirect.headers["location"].endswith("playground/")
