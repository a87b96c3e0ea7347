"""The page in a real headless Chromium (Debian's binary, driven by Playwright): granted
geolocation shows the 10 nearest sites in order, refused geolocation falls back to the IP, the
map draws offline, text is escaped, phone width works, and the console stays clean."""

from __future__ import annotations

import struct
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Geolocation, Page, Route, async_playwright

from app.geo import Point
from app.sites import nearest_exact
from tests.app.conftest import DB
from tests.app.server import uvicorn_server
from tests.chromium import launch

ROME: Geolocation = {"latitude": 41.8902, "longitude": 12.4922}


def _png(rgb: tuple[int, int, int]) -> bytes:
    """A 1x1 PNG, standing in for UNESCO's thumbnails (no internet here)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    raw = b"\x00" + bytes(rgb)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        b = await launch(pw)
        try:
            yield b
        finally:
            await b.close()


class Watch:
    """Console errors, page errors and every request that tried to leave the machine."""

    def __init__(self, page: Page, base: str, thumbnails: bool) -> None:
        self.errors: list[str] = []
        self.outside: list[str] = []
        self.base, self.thumbnails = base, thumbnails
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))

    async def route(self, route: Route) -> None:
        url = route.request.url
        if url.startswith(self.base):
            await route.continue_()
        elif url.startswith("https://whc.unesco.org/uploads/sites/") and self.thumbnails:
            await route.fulfill(status=200, content_type="image/png", body=_png((180, 90, 40)))
        else:
            self.outside.append(url)
            await route.abort("internetdisconnected")


async def open_page(
    browser: Browser, base: str, *, granted: bool, thumbnails: bool = True, **ctx: Any
) -> tuple[Page, Watch]:
    context = await browser.new_context(
        geolocation=ROME if granted else None,
        permissions=["geolocation"] if granted else [],
        **ctx,
    )
    page = await context.new_page()
    watch = Watch(page, base, thumbnails)
    await page.route("**/*", watch.route)
    await page.goto(base + "/")
    return page, watch


async def test_granted_geolocation_shows_the_ten_nearest_in_order(
    sites_db: DB, browser: Browser, artifacts: Path
) -> None:
    conn = await sites_db.connect()
    try:
        here = Point(ROME["latitude"], ROME["longitude"])
        want = [s for s, _ in await nearest_exact(conn, here, 10)]
    finally:
        await conn.close()
    with uvicorn_server(sites_db.settings()) as base:
        page, watch = await open_page(
            browser, base, granted=True, viewport={"width": 1280, "height": 900}
        )
        await page.wait_for_selector("#sites li.card >> nth=9")
        await page.wait_for_selector(".leaflet-outlines-pane canvas")
        ids = await page.eval_on_selector_all("#sites li.card", "els => els.map(e => e.dataset.id)")
        assert ids == [str(s.id_no) for s in want]
        names = await page.eval_on_selector_all("#sites h3 a", "els => els.map(e => e.textContent)")
        assert names == [s.name_en for s in want]
        first = page.locator("#sites li.card").first
        assert await first.locator("h3 a").get_attribute("href") == (
            f"https://whc.unesco.org/en/list/{want[0].id_no}/"
        )
        assert "km" in await first.locator(".distance").inner_text()
        assert await first.locator(".country").inner_text() == want[0].states_name_en
        assert f"Inscribed {want[0].date_inscribed}" in await first.inner_text()
        status = await page.locator("#status").inner_text()
        assert "browser" in status
        assert await page.locator("#use-browser").get_attribute("aria-pressed") == "true"
        assert await page.locator("#map .site-marker").count() == 10
        assert await page.locator("#map .you-marker").count() == 1
        await page.wait_for_function(
            "[...document.querySelectorAll('#sites img.thumb')].every(i => i.complete)"
        )
        assert await page.locator("#sites img.thumb").count() == 10
        footer = await page.locator("footer").inner_text()
        assert "UNESCO" in footer and "GeoLite2" in footer and "MaxMind" in footer
        await page.screenshot(path=str(artifacts / "page-desktop.png"), full_page=True)
        assert watch.errors == []
        # map, scripts and styles are all local: nothing but thumbnails asked the internet
        assert watch.outside == []
        await page.context.close()


async def test_refused_geolocation_falls_back_to_ip_without_thumbnails(
    sites_db: DB, browser: Browser, artifacts: Path
) -> None:
    with uvicorn_server(sites_db.settings()) as base:
        page, watch = await open_page(
            browser,
            base,
            granted=False,
            thumbnails=False,
            viewport={"width": 390, "height": 844},
            is_mobile=True,
            has_touch=True,
        )
        await page.wait_for_selector("#sites li.card >> nth=9")
        assert "San Francisco" in await page.locator("#status").inner_text()
        await page.locator("#use-browser").click()
        await page.wait_for_function(
            "document.querySelector('#status').textContent.includes('refused') &&"
            "document.querySelector('#status').textContent.includes('Showing the')"
        )
        status = await page.locator("#status").inner_text()
        assert "sites near San Francisco" in status
        assert await page.locator("#use-ip").get_attribute("aria-pressed") == "true"
        # offline thumbnails leave compact cards (lazy images load when scrolled to)
        for card in await page.locator("#sites li.card").all():
            await card.scroll_into_view_if_needed()
        await page.wait_for_function(
            "document.querySelectorAll('#sites .thumb-box.no-photo').length === 10"
        )
        # usable at phone width: nothing wider than the screen
        overflow = await page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0
        await page.screenshot(path=str(artifacts / "page-phone.png"), full_page=True)
        # the only console errors are the browser's own notes about the blocked thumbnails
        assert [e for e in watch.errors if "Failed to load resource" not in e] == []
        assert all(u.startswith("https://whc.unesco.org/uploads/sites/") for u in watch.outside)
        await page.context.close()


async def test_site_text_is_escaped(scratch_db: DB, browser: Browser) -> None:
    conn = await scratch_db.connect()
    try:
        from app.load import apply_schema

        await apply_schema(conn)
        await conn.execute(
            "INSERT INTO whc_sites (id_no, name_en, category, states_name_en, date_inscribed, "
            "location) VALUES ($1, $2, 'Cultural', $3, 2000, 'SRID=4326;POINT(12.49 41.89)')",
            4242,
            '<img src=x onerror="window.pwned=1"> & <b>bold</b>',
            "<i>State</i>",
        )
    finally:
        await conn.close()
    with uvicorn_server(scratch_db.settings()) as base:
        page, watch = await open_page(browser, base, granted=True)
        await page.wait_for_selector("#sites li.card")
        link = page.locator("#sites h3 a").first
        assert await link.text_content() == '<img src=x onerror="window.pwned=1"> & <b>bold</b>'
        assert await page.locator("#sites img:not(.thumb), #sites b, #sites i").count() == 0
        label = page.locator("#map .map-label:not(.you-label)").first
        await label.wait_for(state="attached")
        assert await page.locator("#map .map-label img, #map b, #map i").count() == 0
        assert "<b>bold</b>" in (await label.text_content() or "")
        assert await page.evaluate("window.pwned === undefined")
        assert await page.locator("#sites .country").first.text_content() == "<i>State</i>"
        assert watch.errors == []
        await page.context.close()


async def test_unanswered_geolocation_falls_back_to_ip(sites_db: DB, browser: Browser) -> None:
    """Permission granted but no position ever comes: the page's own deadline gives up."""
    with uvicorn_server(sites_db.settings()) as base:
        context = await browser.new_context(permissions=["geolocation"])
        page = await context.new_page()
        watch = Watch(page, base, thumbnails=True)
        await page.route("**/*", watch.route)
        # a browser that never answers: replace the API before the page's script runs
        await page.add_init_script("navigator.geolocation.getCurrentPosition = () => {};")
        await page.goto(base + "/")
        await page.wait_for_function(
            "document.querySelector('#status').textContent.includes('No answer') &&"
            "document.querySelector('#status').textContent.includes('Showing the')",
            timeout=20000,
        )
        status = await page.locator("#status").inner_text()
        assert "sites near San Francisco" in status
        assert await page.locator("#sites li.card").count() == 10
        assert watch.errors == []
        await context.close()
