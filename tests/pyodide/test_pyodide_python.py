"""The playground as a place to write Python: the editor, Ctrl+Enter, printed rows, refused
writes with their SQLSTATE, reconnecting after the server ended the session, readable results,
and the load itself (compressed bytes on a first visit, the cache on a second, timings in
test-artifacts/speed-playground.json), plus axe-core and the phone layout."""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import driver

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page, Route

    from tests.pyodide.conftest import LoadedPage, PlaygroundDB, Server

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
AXE = ROOT / "tests" / "axe" / "node_modules" / "axe-core" / "axe.min.js"
BIG = ("pyodide.asm.wasm", "python_stdlib.zip", "pyodide.asm.mjs", "driver.zip")


async def python_run(page: Page, code: str, *, keys: bool = False) -> dict[str, Any]:
    """Put `code` in the editor and run it (the button, or Ctrl+Enter in the editor)."""
    await page.evaluate("(c) => window.playground.editors.py.setValue(c)", code)
    await page.evaluate("document.getElementById('timing').textContent = ''")
    if keys:
        await page.locator("#code + .CodeMirror textarea").focus()
        await page.keyboard.press("Control+Enter")
    else:
        await page.click("#run-python")
    await page.wait_for_function(
        "document.getElementById('timing').textContent !== '' || "
        "!document.getElementById('error').hidden"
    )
    await page.wait_for_selector("#run-python:not([disabled])")
    return {
        "printed": await page.text_content("#printed") or "",
        "error": None if await page.is_hidden("#error") else await page.text_content("#error"),
        "headers": await page.eval_on_selector_all("#results th", "t => t.map(x => x.textContent)"),
        "rows": await page.eval_on_selector_all(
            "#results tbody tr", "rs => rs.map(r => [...r.cells].map(c => c.textContent))"
        ),
    }


async def test_python_with_conn_prints_rows_and_ctrl_enter_runs(
    loaded_page: LoadedPage, playground_db: PlaygroundDB, playground_server: Server
) -> None:
    code = (
        "rows = await conn.fetch('select id_no, name_en from whc_sites where id_no <= $1"
        " order by id_no', 3)\n"
        "for r in rows:\n"
        "    print(r['id_no'], r['name_en'])\n"
    )
    got = await python_run(loaded_page.page, code, keys=True)
    conn = await driver.connect(
        playground_db.playground_dsn,
        ws_proxy=playground_server.ws_proxy,
        use_secure_websocket=False,
    )
    try:
        want = await conn.fetch("select id_no, name_en from whc_sites where id_no <= 3 order by 1")
    finally:
        await conn.close()
    assert got["error"] is None, got
    assert got["printed"].splitlines() == [f"{r['id_no']} {r['name_en']}" for r in want]


async def test_last_expression_is_a_table_with_readable_geometry(loaded_page: LoadedPage) -> None:
    got = await python_run(
        loaded_page.page,
        "await conn.fetch('select id_no, location from whc_sites order by id_no limit 2')",
    )
    assert got["error"] is None, got
    assert got["headers"] == ["id_no", "location"]
    assert len(got["rows"]) == 2
    assert re.fullmatch(r"POINT\(-?[\d.]+ -?[\d.]+\)", got["rows"][0][1]), got["rows"]
    # the SQL box: headers even with no rows, geometries as WKT by column type
    text = await loaded_page.page.evaluate(
        "window.playground.run('select id_no, location from whc_sites where false')"
    )
    assert json.loads(text)["columns"] == ["id_no", "location"]
    assert json.loads(text)["rows"] == []
    text = await loaded_page.page.evaluate(
        "window.playground.run('select location::geometry as g from whc_sites where id_no = 1')"
    )
    assert json.loads(text)["rows"][0][0].startswith("POINT(")


async def test_refused_write_shows_sqlstate_and_traceback(loaded_page: LoadedPage) -> None:
    page = loaded_page.page
    await page.select_option("#example", "refused")
    code = await page.evaluate("window.playground.editors.py.getValue()")
    assert "DELETE" in code
    got = await python_run(page, code)
    assert "refused: 25006" in got["printed"]
    assert got["error"] is not None and "SQLSTATE 25006" in got["error"]
    assert "Traceback" in got["error"] and "<playground>" in got["error"]
    assert "pgws_playground" not in got["error"]  # only the visitor's own frames


async def test_examples_run_without_error(loaded_page: LoadedPage) -> None:
    page = loaded_page.page
    for example in ("nearest", "transaction", "count"):
        await page.select_option("#example", example)
        code = await page.evaluate("window.playground.editors.py.getValue()")
        got = await python_run(page, code)
        assert got["error"] is None, (example, got)
        assert got["printed"], example


async def test_next_run_succeeds_after_the_server_ends_the_session(
    loaded_page: LoadedPage, playground_db: PlaygroundDB
) -> None:
    page = loaded_page.page
    got = await python_run(page, "print(conn.get_server_pid())")
    pid = int(got["printed"])
    playground_db.cluster.psql(f"SELECT pg_terminate_backend({pid})", db=playground_db.name)
    got = await python_run(page, "print(conn.get_server_pid(), await conn.fetchval('select 1'))")
    assert got["error"] is None, got
    new_pid, one = got["printed"].split()
    assert one == "1" and int(new_pid) != pid
    # the SQL box too
    playground_db.cluster.psql(f"SELECT pg_terminate_backend({new_pid})", db=playground_db.name)
    text = await page.evaluate("window.playground.run('select 2 as two')")
    assert json.loads(text)["rows"] == [[2]]


async def test_real_python_version_is_shown(loaded_page: LoadedPage) -> None:
    version = loaded_page.boot["python"]
    assert re.fullmatch(r"3\.\d+\.\d+", version), version
    assert version != loaded_page.boot["pyodide"]
    shown = await loaded_page.page.text_content("#runtime") or ""
    assert shown == f"Python {version}"


async def resources(page: Page) -> dict[str, list[int]]:
    """What the page and its Python worker fetched (a worker's fetches are in its own
    timeline, which it reports when Python is ready): name -> [transferred, encoded, decoded]."""
    return dict(
        await page.evaluate(
            "window.playground.ready.then((boot) => [...boot.resources,"
            " ...performance.getEntriesByType('resource')].reduce((a, e) => {"
            " a[e.name.split('?')[0].split('/').pop()] = [e.transferSize, e.encodedBodySize,"
            " e.decodedBodySize]; return a; }, {}))"
        )
    )


async def test_first_load_compressed_second_from_cache(
    browser: Browser, playground_server: Server
) -> None:
    context = await browser.new_context()
    page = await context.new_page()
    speed: dict[str, Any] = {}
    try:
        for visit in ("first", "second"):
            started = time.perf_counter()
            await page.goto(playground_server.url, wait_until="commit")
            # usable before Python is ready: the editors and examples are there
            await page.wait_for_selector("#code + .CodeMirror")
            usable = time.perf_counter() - started
            boot = await page.evaluate("window.playground.ready")
            await page.wait_for_selector('#status[data-state="ready"]', timeout=60_000)
            ready = time.perf_counter() - started
            got = await resources(page)
            speed[visit] = {
                "editor usable (s)": round(usable, 3),
                "Python ready (s)": round(ready, 3),
                "Python ready, page's own clock (s)": round(boot["loadMs"] / 1000, 3),
                "stages, ms since navigation start": boot["stages"],
                "editors ready, page's own clock (s)": round(
                    await page.evaluate(
                        "performance.getEntriesByName('playground-editors-ready')[0].startTime"
                    )
                    / 1000,
                    3,
                ),
                "transferred bytes": sum(v[0] for v in got.values()),
                "decoded bytes": sum(v[2] for v in got.values()),
                "files": {k: got[k] for k in BIG if k in got},
            }
            if visit == "first":
                wasm = got["pyodide.asm.wasm"]
                assert wasm[1] < wasm[2] * 0.6, wasm  # sent gzipped
                assert speed[visit]["transferred bytes"] < 8_000_000
            else:
                for name in BIG:
                    assert got[name][0] == 0, (name, got[name])  # no body, not even a request
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / "speed-playground.json").write_text(json.dumps(speed, indent=2))
        print(json.dumps(speed, indent=2))
    finally:
        await context.close()


async def test_phone_layout_and_accessibility(browser: Browser, playground_server: Server) -> None:
    context = await browser.new_context(
        viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    page = await context.new_page()
    try:
        await page.goto(playground_server.url)
        await page.wait_for_selector('#status[data-state="ready"]', timeout=60_000)
        await python_run(page, "await conn.fetch('select * from whc_sites order by id_no limit 5')")
        overflow = await page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0
        assert await page.locator("a[href='/']").count() == 1
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / "playground-phone.png"), full_page=True)
        await page.add_script_tag(path=str(AXE))
        result = await page.evaluate("axe.run(document, {resultTypes: ['violations']})")
        (ARTIFACTS / "axe-playground.json").write_text(json.dumps(result["violations"], indent=1))
        bad = [
            (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
            for v in result["violations"]
            if v["impact"] in ("serious", "critical")
        ]
        assert bad == []
    finally:
        await context.close()


async def test_page_works_while_python_starts_in_its_worker(
    browser: Browser, playground_server: Server
) -> None:
    """Python loads in a Web Worker: while it does (the driver bundle is held back here), the
    examples, the editor and the SQL box answer, a run waits for Python and then completes, and
    Pyodide's own scripts were never loaded by the page itself."""
    context = await browser.new_context()
    page = await context.new_page()
    release = asyncio.Event()

    async def hold(route: Route) -> None:
        await release.wait()
        await route.continue_()

    try:
        await page.route("**/driver.zip", hold)
        await page.goto(playground_server.url)
        await page.wait_for_selector("#code + .CodeMirror")
        await page.select_option("#example", "count")
        code = await page.evaluate("window.playground.editors.py.getValue()")
        assert "GROUP BY" in code
        await page.evaluate("window.playground.editors.sql.setValue('select 40 + 2 as answer')")
        await page.click("#run")
        await page.wait_for_function(
            "document.getElementById('status').textContent.includes('Waiting for Python')"
        )
        assert await page.get_attribute("#status", "data-state") == "loading"
        release.set()
        await page.wait_for_selector("#results tbody tr")
        assert await page.eval_on_selector_all("#results td", "t => t.map(x => x.textContent)") == [
            "42"
        ]
        own = await page.evaluate(
            "performance.getEntriesByType('resource').map(e => e.name.split('/').pop())"
        )
        assert "pyodide.asm.mjs" not in own and "pyodide.mjs" not in own
        assert "pyodide.asm.mjs" in [
            r["name"].split("/").pop()
            for r in (await page.evaluate("window.playground.ready"))["resources"]
        ]
    finally:
        release.set()
        await context.close()


async def test_second_visit_resumes_python_from_its_snapshot(
    browser: Browser, playground_server: Server
) -> None:
    """The first visit saves a memory snapshot of the started Python (Cache Storage); the next
    one resumes from it, and that Python still finds the driver's files and queries."""
    context = await browser.new_context()
    page = await context.new_page()
    saved = (
        "caches.open('pgws-playground-snapshots').then((c) => c.keys())"
        ".then((keys) => keys.map((k) => k.url))"
    )
    try:
        await page.goto(playground_server.url)
        first = await page.evaluate("window.playground.ready")
        assert "snapshot read" not in first["stages"]
        await page.wait_for_function(f"{saved}.then((urls) => urls.length === 1)")
        await page.goto(playground_server.url)
        second = await page.evaluate("window.playground.ready")
        assert "snapshot read" in second["stages"], second["stages"]
        assert second["python"] == first["python"]
        got = await python_run(
            page, "import driver.transport.pyodide\nprint(await conn.fetchval('select 6 * 7'))"
        )
        assert got["error"] is None, got
        assert got["printed"].strip() == "42"
        assert len(await page.evaluate(saved)) == 1
    finally:
        await context.close()
