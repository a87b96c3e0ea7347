"""The page's map and states in real headless Chromium, at desktop and phone sizes.

The expected sites come from a PostGIS query written here (distance to every row of whatever
the table holds), not from the app's code, so the tests hold for the real list or a sample.
Screenshots go to test-artifacts/ (git-ignored); time to first useful paint goes to
test-artifacts/speed-page.json.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, Route, async_playwright

from app.assets import Assets
from app.sample import CLUSTERS
from tests.app.conftest import DB
from tests.app.server import uvicorn_server
from tests.chromium import launch

AXE = Path(__file__).resolve().parents[1] / "axe" / "node_modules" / "axe-core" / "axe.min.js"
PLACES = {
    "paris": (48.8566, 2.3522),
    "tokyo": (35.6762, 139.6503),
    "nairobi": (-1.2921, 36.8219),
    "pacific": (0.0, -160.0),
}
SIZES = {"desktop": (1366, 900), "phone": (390, 844)}
# Dense places of the invented list (app/sample.py): one of its clusters (dozens of sites within
# about 20 km) and a coordinate that three sites share exactly.
DENSE = {"cluster": CLUSTERS[2], "shared": (-33.5, 18.25)}
OVERLAP_PX = 2.0  # how far two markers' boxes may run into each other
TIE_M = 1.0  # distances closer than this may come in either order
DISTANCES = """
SELECT id_no, ST_Distance(location, ST_SetSRID(ST_MakePoint($1, $2), 4326)::geography, false) AS d
FROM whc_sites ORDER BY d, id_no LIMIT $3
"""
SPEED: dict[str, Any] = {}
# A 1x1 PNG standing in for a tile server's answer (no internet here).
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de"
    "0000000c4944415478da63f8cfc0000003010100c9fe92ef0000000049454e44ae426082"
)


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        b = await launch(pw)
        try:
            yield b
        finally:
            await b.close()


@pytest.fixture(scope="module")
def base(sites_db: DB, artifacts: Path) -> Iterator[str]:
    Assets().build(log=lambda _: None)  # the precompressed copies, as bootstrap makes them
    with uvicorn_server(sites_db.settings()) as url:
        yield url
    (artifacts / "speed-page.json").write_text(json.dumps(SPEED, indent=2))


async def truth(db: DB, lat: float, lon: float) -> list[tuple[int, float]]:
    conn = await db.connect()
    try:
        rows = await conn.fetch(DISTANCES, lon, lat, 40)
    finally:
        await conn.close()
    return [(int(r["id_no"]), float(r["d"])) for r in rows]


def assert_nearest_in_order(shown: list[int], expected: list[tuple[int, float]]) -> None:
    """The page's ten are the ten nearest, in order; only near-equal distances may swap."""
    dist = dict(expected)
    assert len(shown) == 10
    assert all(i in dist for i in shown), (shown, expected[:12])
    ds = [dist[i] for i in shown]
    assert all(a <= b + TIE_M for a, b in itertools.pairwise(ds)), ds
    tenth = expected[9][1]
    assert all(d <= tenth + TIE_M for d in ds), (ds, tenth)
    must = [i for i, d in expected if d < tenth - TIE_M]
    assert set(must) <= set(shown)


async def new_page(
    browser: Browser,
    base: str,
    size: str,
    where: tuple[float, float] | None,
    *,
    offline: bool = True,
    **ctx: Any,
) -> Page:
    w, h = SIZES[size]
    phone = size == "phone"
    context = await browser.new_context(
        viewport={"width": w, "height": h},
        is_mobile=phone,
        has_touch=phone,
        geolocation={"latitude": where[0], "longitude": where[1]} if where else None,
        permissions=["geolocation"] if where else [],
        **ctx,
    )
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.errors = errors  # type: ignore[attr-defined]

    async def local_only(route: Route) -> None:
        if route.request.url.startswith(base):
            await route.continue_()
        else:  # photos and anything else outside: this machine has no internet
            await route.abort("internetdisconnected")

    if offline:  # (Playwright turns the HTTP cache off while requests are routed)
        await page.route("**/*", local_only)
    return page


async def overflow(page: Page) -> int:
    return int(
        await page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
    )


async def zoom(page: Page) -> float:
    return float(await page.evaluate("window.whc.map.getZoom()"))


async def map_idle(page: Page) -> None:
    await page.wait_for_function(
        "!document.querySelector('#map .leaflet-zoom-anim') && "
        "!window.whc.map._animatingZoom && !window.whc.map._panAnim?._inProgress"
    )


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("place", list(PLACES))
async def test_nearest_sites_markers_and_layout(
    sites_db: DB, browser: Browser, base: str, artifacts: Path, place: str, size: str
) -> None:
    lat, lon = PLACES[place]
    expected = await truth(sites_db, lat, lon)
    page = await new_page(browser, base, size, (lat, lon))
    await page.goto(base + "/")
    await page.wait_for_selector("#sites li.card[data-id] >> nth=9")
    SPEED[f"first useful paint {place} {size} (s)"] = round(
        await page.evaluate("performance.getEntriesByName('whc-sites-shown')[0].startTime / 1000"),
        3,
    )
    shown = [
        int(x)
        for x in await page.eval_on_selector_all(
            "#sites li.card", "els => els.map(e => e.dataset.id)"
        )
    ]
    assert_nearest_in_order(shown, expected)
    status = await page.locator("#status").inner_text()
    assert "your browser gave" in status and "internal" not in status
    assert await page.locator("#main").get_attribute("aria-busy") == "false"
    # every site has its own marker, displayed inside the map's box (fit to the results)
    await map_idle(page)
    box = await page.locator("#map").bounding_box()
    assert box is not None
    markers = page.locator("#map .site-marker")
    assert await markers.count() == 10
    for i in range(10):
        m = await markers.nth(i).bounding_box()
        assert m is not None and await markers.nth(i).is_visible(), i
        assert m["width"] >= 32 and m["height"] >= 32  # finger-sized
        cx, cy = m["x"] + m["width"] / 2, m["y"] + m["height"] / 2
        assert box["x"] <= cx <= box["x"] + box["width"], (i, m, box)
        assert box["y"] <= cy <= box["y"] + box["height"], (i, m, box)
    assert await page.locator("#map .you-marker").count() == 1
    assert await page.locator(".leaflet-control-scale-line").count() >= 1
    # labels never cover each other
    rects = await page.eval_on_selector_all(
        ".map-label:not(.hidden-label)", "els => els.map(e => e.getBoundingClientRect().toJSON())"
    )
    assert rects, "no label shown"
    for i, a in enumerate(rects):
        for b in rects[i + 1 :]:
            assert not (
                a["left"] < b["right"]
                and b["left"] < a["right"]
                and a["top"] < b["bottom"]
                and b["top"] < a["bottom"]
            ), (a, b)
    assert await overflow(page) <= 0
    if size == "phone":  # the first screen holds the map and the first sites
        first = await page.locator("#sites li.card").first.bounding_box()
        assert first is not None and first["y"] + first["height"] <= SIZES["phone"][1]
    await page.screenshot(path=str(artifacts / f"map-{place}-{size}.png"))
    await page.screenshot(path=str(artifacts / f"map-{place}-{size}-full.png"), full_page=True)
    assert page.errors == []  # type: ignore[attr-defined]
    await page.context.close()


@pytest.mark.parametrize("place", list(DENSE))
async def test_dense_sites_each_keep_a_tappable_marker(
    browser: Browser, base: str, artifacts: Path, place: str
) -> None:
    page = await new_page(browser, base, "phone", DENSE[place])
    await page.goto(base + "/")
    await page.wait_for_selector("#sites li.card[data-id] >> nth=9")
    await map_idle(page)
    box = await page.locator("#map").bounding_box()
    assert box is not None
    markers = page.locator("#map .site-marker")
    assert await markers.count() == 10
    boxes = []
    for i in range(10):
        m = await markers.nth(i).bounding_box()
        assert m is not None and m["width"] >= 32 and m["height"] >= 32, i
        cx, cy = m["x"] + m["width"] / 2, m["y"] + m["height"] / 2
        assert box["x"] <= cx <= box["x"] + box["width"], (i, m, box)
        assert box["y"] <= cy <= box["y"] + box["height"], (i, m, box)
        # nothing covers its centre: a tap there reaches this marker
        on_top = await page.evaluate(
            "([x, y]) => document.elementFromPoint(x, y).closest('.site-marker')?.dataset.rank",
            [cx, cy],
        )
        assert on_top == str(i), (i, on_top)
        boxes.append(m)
    for i, a in enumerate(boxes):
        for j, b in enumerate(boxes[i + 1 :], i + 1):
            wide = min(a["x"] + a["width"], b["x"] + b["width"]) - max(a["x"], b["x"])
            high = min(a["y"] + a["height"], b["y"] + b["height"]) - max(a["y"], b["y"])
            assert min(wide, high) <= OVERLAP_PX, (i, j, a, b)
    # the last of them is tapped and selects its own card
    await markers.nth(9).tap()
    await page.wait_for_function(
        "document.querySelectorAll('#sites li.card')[9].classList.contains('selected')"
    )
    await page.screenshot(path=str(artifacts / f"map-dense-{place}-phone.png"))
    assert page.errors == []  # type: ignore[attr-defined]
    await page.context.close()


@pytest.mark.parametrize("size", list(SIZES))
async def test_marker_and_card_highlight_each_other(browser: Browser, base: str, size: str) -> None:
    page = await new_page(browser, base, size, PLACES["paris"])
    await page.goto(base + "/")
    await page.wait_for_selector("#sites li.card[data-id] >> nth=9")
    await map_idle(page)
    marker = page.locator("#map .site-marker").nth(3)
    if size == "phone":
        await marker.tap()
    else:
        await marker.click()
    card = page.locator("#sites li.card").nth(3)
    await page.wait_for_function(
        "document.querySelectorAll('#sites li.card')[3].classList.contains('selected')"
    )
    assert await card.get_attribute("aria-current") == "true"
    assert await page.locator("#sites li.card.selected").count() == 1
    # and the other way: a card selects its marker
    other = page.locator("#sites li.card").nth(6).locator(".card-body .meta").first
    await other.scroll_into_view_if_needed()
    if size == "phone":
        await other.tap()
    else:
        await other.click()
    await page.wait_for_function(
        "document.querySelectorAll('#map .site-marker')[6].classList.contains('selected')"
    )
    assert await page.locator("#map .site-marker.selected").count() == 1
    assert await page.locator("#sites li.card.selected").get_attribute("data-rank") == "6"
    # keyboard: a marker takes focus and Enter selects it
    await page.locator("#map .site-marker").nth(1).focus()
    await page.keyboard.press("Enter")
    await page.wait_for_function(
        "document.querySelectorAll('#sites li.card')[1].classList.contains('selected')"
    )
    await page.context.close()


async def test_wheel_zoom_in_and_out(browser: Browser, base: str) -> None:
    page = await new_page(browser, base, "desktop", PLACES["tokyo"])
    await page.goto(base + "/")
    await page.wait_for_selector("#sites li.card[data-id] >> nth=9")
    await map_idle(page)
    box = await page.locator("#map").bounding_box()
    assert box is not None
    await page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    z0 = await zoom(page)
    await page.mouse.wheel(0, -400)
    await page.wait_for_function(f"window.whc.map.getZoom() > {z0}")
    await map_idle(page)
    z1 = await zoom(page)
    await page.mouse.wheel(0, 800)
    await page.wait_for_function(f"window.whc.map.getZoom() < {z1}")
    await page.context.close()


async def pinch(page: Page, cx: float, cy: float, start: float, end: float) -> None:
    """Two fingers moving apart (end > start) or together, as CDP touch events."""
    cdp = await page.context.new_cdp_session(page)

    def points(gap: float) -> list[dict[str, float]]:
        return [{"x": cx - gap, "y": cy, "id": 1}, {"x": cx + gap, "y": cy, "id": 2}]

    await cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": points(start)})
    steps = 12
    for k in range(1, steps + 1):
        gap = start + (end - start) * k / steps
        await cdp.send(
            "Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": points(gap)}
        )
    await cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    await cdp.detach()


async def test_pinch_zoom_in_and_out(browser: Browser, base: str) -> None:
    page = await new_page(browser, base, "phone", PLACES["nairobi"])
    await page.goto(base + "/")
    await page.wait_for_selector("#sites li.card[data-id] >> nth=9")
    await map_idle(page)
    box = await page.locator("#map").bounding_box()
    assert box is not None
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    z0 = await zoom(page)
    await pinch(page, cx, cy, 30, 120)
    await page.wait_for_function(f"window.whc.map.getZoom() > {z0} + 0.5")
    await map_idle(page)
    z1 = await zoom(page)
    await pinch(page, cx, cy, 120, 30)
    await page.wait_for_function(f"window.whc.map.getZoom() < {z1} - 0.5")
    assert await overflow(page) <= 0
    await page.context.close()


async def test_slow_api_shows_the_loading_state(
    browser: Browser, base: str, artifacts: Path
) -> None:
    page = await new_page(browser, base, "phone", PLACES["paris"])
    release = asyncio.Event()

    async def slow(route: Route) -> None:
        await release.wait()
        await route.continue_()

    await page.route("**/api/nearest*", slow)
    await page.goto(base + "/")
    await page.wait_for_function(
        "document.querySelector('#status').textContent.includes('Looking up the nearest')"
    )
    assert await page.locator("#sites li.skeleton").count() >= 3
    assert await page.locator("#main").get_attribute("aria-busy") == "true"
    await page.screenshot(path=str(artifacts / "map-loading-phone.png"))
    release.set()
    await page.wait_for_selector("#sites li.card[data-id] >> nth=9")
    assert await page.locator("#sites li.skeleton").count() == 0
    await page.context.close()


async def test_unreachable_api_retries_and_recovers(
    browser: Browser, base: str, artifacts: Path
) -> None:
    page = await new_page(browser, base, "desktop", PLACES["nairobi"])
    down = {"on": True, "tries": 0}

    async def flaky(route: Route) -> None:
        if down["on"]:
            down["tries"] += 1
            await route.abort("connectionrefused")
        else:
            await route.continue_()

    await page.route("**/api/nearest*", flaky)
    await page.goto(base + "/")
    retry = page.locator("#retry-box")
    await retry.wait_for(state="visible")
    assert "cannot be reached" in await retry.inner_text()
    assert "Trying again in" in await retry.inner_text()
    await page.wait_for_function("window.whc.failures >= 2", timeout=15_000)  # backs off, again
    await page.screenshot(path=str(artifacts / "map-retry-desktop.png"))
    down["on"] = False
    await page.wait_for_selector("#sites li.card[data-id] >> nth=9", timeout=20_000)
    assert await retry.is_hidden()
    assert down["tries"] >= 2
    assert "Showing the 10 sites" in await page.locator("#status").inner_text()
    await page.context.close()


async def test_default_place_is_explained_with_an_offer(browser: Browser, base: str) -> None:
    page = await new_page(browser, base, "phone", None)
    await page.goto(base + "/")
    await page.wait_for_selector("#sites li.card[data-id] >> nth=9")
    box = page.locator("#default-box")
    assert await box.is_visible()
    assert "cannot be located" in await box.inner_text()
    assert await box.locator("button").inner_text() == "Use my location"
    assert "a default place" in await page.locator("#status").inner_text()
    await page.context.close()


async def test_axe_finds_no_serious_violation_and_second_load_is_cached(
    browser: Browser, base: str, artifacts: Path
) -> None:
    page = await new_page(browser, base, "phone", PLACES["paris"], offline=False)
    sizes: dict[str, tuple[int, int]] = {}

    async def record() -> dict[str, Any]:
        return dict(
            await page.evaluate(
                "performance.getEntriesByType('resource').filter(e => e.name.includes('/assets/'))"
                ".reduce((a, e) => { a[e.name.split('/').pop()] = [e.transferSize,"
                " e.encodedBodySize, e.decodedBodySize]; return a; }, {})"
            )
        )

    shown_at = "performance.getEntriesByName('whc-sites-shown')[0].startTime / 1000"
    await page.goto(base + "/", wait_until="commit")
    await page.wait_for_selector("#sites li.card[data-id] >> nth=9")
    first_s = await page.evaluate(shown_at)
    await page.wait_for_function("document.querySelector('.leaflet-outlines-pane canvas')")
    first = await record()
    assert first["leaflet.js"][1] < first["leaflet.js"][2]  # sent gzipped
    await page.goto(base + "/", wait_until="commit")
    await page.wait_for_selector("#sites li.card[data-id] >> nth=9")
    second_s = await page.evaluate(shown_at)
    second = await record()
    for name in ("leaflet.js", "app.js", "style.css", "countries-50m.json"):
        assert second[name][0] == 0, (name, second[name])  # from the cache, no request at all
    sizes = {k: (v[0], v[2]) for k, v in first.items()}
    SPEED["page first load: first useful paint (s)"] = round(first_s, 3)
    SPEED["page second load: first useful paint (s)"] = round(second_s, 3)
    SPEED["page first load: transferred bytes of assets"] = sum(t for t, _ in sizes.values())
    SPEED["page first load: decoded bytes of assets"] = sum(d for _, d in sizes.values())
    await page.add_script_tag(path=str(AXE))
    result = await page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    bad = [
        (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    (artifacts / "axe-page.json").write_text(json.dumps(result["violations"], indent=1))
    assert bad == []
    await page.context.close()


async def test_online_tiles_only_when_opted_in(sites_db: DB, browser: Browser, base: str) -> None:
    page = await new_page(browser, base, "desktop", PLACES["paris"])
    await page.goto(base + "/")
    await page.wait_for_selector("#sites li.card[data-id] >> nth=9")
    assert await page.locator("meta[name=whc-tiles]").count() == 0
    assert await page.locator(".leaflet-tile").count() == 0
    await page.context.close()
    template = "https://tiles.invalid/{z}/{x}/{y}.png"
    settings = sites_db.settings(map_tiles_url=template, map_tiles_attribution="Test tiles")
    with uvicorn_server(settings) as other:
        page = await new_page(browser, other, "desktop", PLACES["paris"], offline=False)
        asked: list[str] = []

        async def tile(route: Route) -> None:
            asked.append(route.request.url)
            await route.fulfill(status=200, content_type="image/png", body=PNG)

        await page.route("https://tiles.invalid/**", tile)
        await page.goto(other + "/")
        await page.wait_for_selector("#sites li.card[data-id] >> nth=9")
        await page.wait_for_selector(".leaflet-tile-loaded")
        assert asked and all(u.startswith("https://tiles.invalid/") for u in asked)
        assert "Test tiles" in await page.locator(".leaflet-control-attribution").inner_text()
        await page.context.close()
