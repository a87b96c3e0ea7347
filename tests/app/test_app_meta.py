"""/api/meta and the page's "sample data" banner: the invented list is never shown as UNESCO's."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import Browser

from tests.app.apphelp import serve
from tests.app.conftest import DB
from tests.app.server import uvicorn_server
from tests.app.test_app_load import run_loader
from tests.app.test_app_page import browser  # noqa: F401  (fixture)


async def test_meta_reports_the_sample_and_how_to_load_the_real_list(sites_db: DB) -> None:
    async with serve(sites_db.settings()) as (_, client):
        r = await client.get("/api/meta")
        assert r.status_code == 200
        body = r.json()
        assert body["sample"] is True and body["sites"] == int(
            sites_db.psql("SELECT count(*) FROM whc_sites")
        )
        assert "python -m app.load FILE" in body["howToLoad"]
        assert body["loadedAt"]


async def test_meta_for_a_real_file_and_for_a_table_loaded_before_it_existed(
    scratch_db: DB, sample_csv: Path
) -> None:
    async with serve(scratch_db.settings()) as (_, client):
        # no whc_dataset table at all (an older loader): nothing is claimed
        body = (await client.get("/api/meta")).json()
        assert body == {"sample": False, "source": None, "sites": None, "loadedAt": None,
                        "howToLoad": None}
        # a file given to the loader is not the sample, even when its rows are invented
        assert run_loader(scratch_db, str(sample_csv)).returncode == 0
        body = (await client.get("/api/meta")).json()
        assert body["sample"] is False and body["source"] == str(sample_csv)
        assert body["howToLoad"] is None


async def test_page_shows_the_sample_banner_only_for_the_sample(
    sites_db: DB, scratch_db: DB, sample_csv: Path, browser: Browser  # noqa: F811
) -> None:
    assert run_loader(scratch_db, str(sample_csv)).returncode == 0
    for db, shown in ((sites_db, True), (scratch_db, False)):
        with uvicorn_server(db.settings()) as base:
            context = await browser.new_context()
            page = await context.new_page()
            await page.goto(base + "/")
            await page.wait_for_selector("#sites li.card")
            banner = page.locator("#sample-banner")
            if shown:
                await banner.wait_for(state="visible")
                text = await banner.inner_text()
                assert "Sample data" in text and "python -m app.load FILE" in text
            else:
                await page.wait_for_load_state("networkidle")
                assert not await banner.is_visible()
            await context.close()
