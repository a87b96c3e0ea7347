"""Fixtures for the browser tests: a database for the playground, the page's server, Chromium.

Pyodide takes seconds to start, so one page is loaded per module and the tests share it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, async_playwright

from app.assets import Assets
from tests.chromium import launch
from tools.pgcluster import Cluster, free_port
from tools.procs import start_and_wait, stop

ROOT = Path(__file__).resolve().parents[2]
DB = "playground_test"
# A synthetic grid of sites (never rows of the real UNESCO list), enough for a KNN query to
# have a well-defined order: distinct distances from the probe points used by the tests.
SITES_SQL = """
INSERT INTO whc_sites (id_no, name_en, category, states_name_en, iso_code, date_inscribed,
                       location)
SELECT i, 'Test site ' || i || ' ✓', (ARRAY['Cultural','Natural','Mixed'])[1 + i % 3],
       'Testland', 'tl', 1978 + i % 40,
       ST_SetSRID(ST_MakePoint(-170 + (i % 20) * 17.3 + i * 0.013,
                               -60 + (i / 20) * 11.1 + i * 0.007), 4326)::geography
FROM generate_series(1, 240) AS i
ON CONFLICT DO NOTHING;
"""


@dataclass(frozen=True)
class PlaygroundDB:
    cluster: Cluster
    name: str

    def dsn(self, role: str) -> str:
        base = self.cluster.dsn(role)
        return base.rsplit("/", 1)[0] + "/" + self.name

    @property
    def playground_dsn(self) -> str:
        return f"postgresql://playground:playground@127.0.0.1:{self.cluster.port}/{self.name}"


@pytest.fixture(scope="session")
def playground_db(pg: Cluster) -> PlaygroundDB:
    """Its own database, so the sites the tests insert never meet the app's tests."""
    pg.psql(f"CREATE DATABASE {DB}", db="postgres")
    pg.psql((ROOT / "sql" / "schema.sql").read_text(), db=DB)
    pg.psql(SITES_SQL, db=DB)
    pg.psql((ROOT / "sql" / "playground_role.sql").read_text(), db=DB)
    pg.psql("GRANT SELECT ON whc_sites TO scram_user", db=DB)
    pg.psql("CREATE TABLE secret (x int); INSERT INTO secret VALUES (42)", db=DB)
    return PlaygroundDB(pg, DB)


@dataclass(frozen=True)
class Server:
    url: str
    ws_proxy: str


@pytest.fixture(scope="session")
def playground_server(playground_db: PlaygroundDB, proxy: Any) -> Iterator[Server]:
    """The real playground router in its own uvicorn process, on a free loopback port."""
    if not (ROOT / "web" / "pyodide" / "node_modules" / "pyodide" / "pyodide.mjs").exists():
        pytest.fail("web/pyodide/node_modules is missing: run scripts/bootstrap.sh (npm ci)")
    Assets().build(log=lambda _: None)  # precompressed copies, as scripts/bootstrap.sh makes
    port = free_port()
    env = {
        "PLAYGROUND_DATABASE_URL": playground_db.playground_dsn,
        "PLAYGROUND_WS_PROXY": proxy.ws_proxy,
        "PLAYGROUND_WS_SECURE": "0",
    }
    argv = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "app.playground:create_playground_app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
    ]
    proc, _ = start_and_wait(argv, "Uvicorn running on", env=env, timeout=30)
    try:
        yield Server(f"http://127.0.0.1:{port}/playground/", proxy.ws_proxy)
    finally:
        stop(proc)


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        b = await launch(p)
        try:
            yield b
        finally:
            await b.close()


@dataclass
class LoadedPage:
    page: Page
    console: list[str]
    requests: list[str]
    boot: dict[str, Any]

    async def python(self, code: str) -> Any:
        """Run Python in the page's Pyodide; the code's last expression must be JSON text."""
        return json.loads(await self.page.evaluate("(c) => window.playground.python(c)", code))


@pytest.fixture(scope="module")
async def loaded_page(browser: Browser, playground_server: Server) -> AsyncIterator[LoadedPage]:
    """The playground page with Pyodide started and the driver bundle unpacked."""
    context = await browser.new_context()
    page = await context.new_page()
    console: list[str] = []
    requests: list[str] = []
    page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
    page.on("request", lambda r: requests.append(r.url))
    await page.goto(playground_server.url)
    boot = await page.evaluate("window.playground.ready")
    await page.wait_for_selector('#status[data-state="ready"]', timeout=60_000)
    try:
        yield LoadedPage(page, console, requests, boot)
    finally:
        await context.close()
