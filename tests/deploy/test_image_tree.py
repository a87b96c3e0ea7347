"""The image without a Docker engine: its file tree built from a clone through .dockerignore,
its virtualenv installed from requirements.lock alone, its gzip copies made by its own RUN line,
its CMD and HEALTHCHECK run as the container would, and the service exercised from it: `/`
(map, outlines, markers), `/api/nearest`, `/docs` and `/playground` (editor, Python) in
Chromium, with every request the browser makes kept on loopback and answered."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import Browser, Page, Request, Response, Route, async_playwright
from playwright.async_api import TimeoutError as PlaywrightTimeout

from app.assets import GROUPS, IMMUTABLE, Assets, Group
from app.docs import _FILES as DOCS_FILES
from app.docs import SWAGGER_DIST
from app.page import MAP_DATA
from tests.app.conftest import DB
from tests.chromium import launch
from tests.deploy.imagetree import (
    ROOT,
    Image,
    UnsupportedLine,
    build_image,
    excluded,
    ignore_rules,
    plan,
)
from tools.pgcluster import free_port
from tools.procs import start_and_wait, stop

pytestmark = pytest.mark.timeout(900)


def test_dockerignore_rules() -> None:
    rules = ignore_rules((ROOT / ".dockerignore").read_text())
    assert not excluded("app/main.py", rules)
    assert not excluded("web/pyodide/playground.html", rules)
    assert not excluded("requirements.lock", rules)
    for path in (
        "tests/conftest.py",
        ".venv/bin/python",
        "app/map/node_modules/x/y.json",
        "app/__pycache__/main.cpython-311.pyc",
        "Dockerfile",
        ".git/config",
        "web/pyodide/node_modules/pyodide/pyodide.mjs",
        "driver/_speedups.cpython-311-x86_64-linux-gnu.so",  # the host's build, not the image's
    ):
        assert excluded(path, rules), path


@pytest.fixture(scope="module")
def image() -> Iterator[Image]:
    with tempfile.TemporaryDirectory(prefix="pgws-image-") as work:
        yield build_image(Path(work))


DOCKERFILE = (ROOT / "Dockerfile").read_text()


@pytest.mark.parametrize(
    ("after", "line"),
    [
        ("WORKDIR /build\n", "RUN npm install leaflet"),
        ("WORKDIR /build\n", "RUN npm ci --prefix app/map --omit=optional"),
        ("FROM scratch AS pagefiles\n", "RUN python -m app.assets"),
        ("USER 10001:10001\n", "RUN apt-get install -y curl"),
        ("USER 10001:10001\n", "RUN python -m app.assets && rm -rf /srv/tests"),
        ("USER 10001:10001\n", "RUN python -c \"import os; os.remove('x')\""),
        ("USER 10001:10001\n", "COPY --chown=app:app app ./app"),
        ("USER 10001:10001\n", "COPY --from=nowhere /x ./x"),
        ("USER 10001:10001\n", "COPY app/main.py app/page.py ./app"),
        ("USER 10001:10001\n", "ADD app ./app"),
        ("USER 10001:10001\n", "ARG MODE=dev"),
        ("USER 10001:10001\n", "VOLUME /srv/var"),
        ("USER 10001:10001\n", 'ENTRYPOINT ["python"]'),
        ("USER 10001:10001\n", 'ENV GREETING="hello there"'),
        ("USER 10001:10001\n", "CMD python -m app.serve"),
    ],
)
def test_replay_refuses_lines_it_does_not_understand(after: str, line: str) -> None:
    """A line the replay would skip or get wrong fails the plan, before anything runs."""
    assert after in DOCKERFILE
    with pytest.raises(UnsupportedLine):
        plan(DOCKERFILE.replace(after, f"{after}{line}\n", 1))


def test_the_dockerfile_is_understood_line_by_line() -> None:
    stages = plan(DOCKERFILE)
    assert [s.name for s in stages][-1] == "runtime"
    assert sum(len(s.steps) for s in stages) == sum(len(s.lines) for s in stages)


def _image_groups(image: Image) -> dict[str, Group]:
    return {
        name: Group(image.tree / g.root.relative_to(ROOT), g.patterns) for name, g in GROUPS.items()
    }


def _needed_npm_files() -> set[str]:
    """What the pages read from node_modules (the asset groups, /docs' files, the outlines of
    /map/countries-110m.json) and the licences of those packages, as checkout paths."""
    needed = {
        p.relative_to(ROOT).as_posix()
        for g in GROUPS.values()
        if "node_modules" in g.root.parts
        for p in g.files().values()
    }
    needed |= {(SWAGGER_DIST / name).relative_to(ROOT).as_posix() for name in DOCS_FILES}
    needed.add(MAP_DATA.relative_to(ROOT).as_posix())
    licences = set()
    for rel in needed:
        modules, package = rel.split("/node_modules/")[0], rel.split("/node_modules/")[1]
        top = ROOT / modules / "node_modules" / package.split("/")[0]
        licences |= {
            p for p in (top / "LICENSE", top / "NOTICE", ROOT / f"{rel}.LICENSE.txt") if p.is_file()
        }
    return needed | {p.relative_to(ROOT).as_posix() for p in licences}


def test_image_tree_holds_what_it_needs_and_nothing_else(image: Image, tmp_path: Path) -> None:
    assert not any(
        p.startswith(("tests/", "tools/", "bench/", ".ci/", "var/")) for p in image.context
    )
    for need in (
        "app/main.py",
        "sql/schema.sql",
        "web/pyodide/playground.html",
        "web/pyodide/node_modules/pyodide/pyodide.asm.wasm",
        "web/pyodide/node_modules/codemirror/lib/codemirror.js",
        "app/map/node_modules/leaflet/dist/leaflet.js",
        "app/swagger/node_modules/swagger-ui-dist/swagger-ui-bundle.js",
        "app/map/node_modules/world-atlas/countries-10m.json",
    ):
        assert (image.tree / need).is_file(), need
    # node_modules: exactly the files the pages read and the licences, no package.json, no
    # source maps, no test tools (tests/axe's packages are not in the context at all)
    shipped = {
        p.relative_to(image.tree).as_posix()
        for p in image.tree.rglob("*")
        if p.is_file() and "node_modules" in p.parts
    }
    assert shipped == _needed_npm_files()
    # every asset group holds in the image what it holds here, so the hashed URLs are the same
    in_image = Assets(groups=_image_groups(image), build_dir=image.tree / "var" / "assets")
    here = Assets()
    for name, group in _image_groups(image).items():
        assert group.files().keys() == GROUPS[name].files().keys(), name
        assert in_image.url(name) == here.url(name)
    # the gzip copies came from the image's own RUN (var/ is not in the context) and are
    # complete: building again on a copy of them writes nothing
    built = image.tree / "var" / "assets"
    assert sorted(p.name for p in (image.tree / "var").iterdir()) == ["assets"]
    assert len(list(built.glob("*.gz"))) >= 10
    again = shutil.copytree(built, tmp_path / "assets")
    written: list[str] = []
    Assets(groups=_image_groups(image), build_dir=again).build(log=written.append)
    assert written == []
    assert not list(image.tree.rglob("__pycache__"))
    assert image.user == "10001:10001"
    # the venv holds the locked versions exactly, and not the project or the test tools
    freeze = subprocess.run(
        [str(image.venv / "bin" / "python"), "-m", "pip", "freeze"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    def norm(name: str) -> str:
        return name.lower().replace("_", "-").replace(".", "-")

    installed = {norm(ln.split("==")[0]): ln.split("==")[1] for ln in freeze.split() if "==" in ln}
    locked = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if "==" in line and not line.startswith((" ", "#")):
            name, version = line.split(" ")[0].split("==")
            locked[norm(name)] = version
    for name, version in locked.items():
        assert installed.get(name) == version, (name, installed.get(name), version)
    assert "pytest" not in installed and "pgws" not in installed


@dataclass
class Running:
    base: str
    db: DB


@pytest.fixture(scope="module")
def served(image: Image, sample_db: DB) -> Iterator[Running]:
    port = free_port()
    pg = sample_db.pg
    env = {
        **image.env,
        "PATH": image.env["PATH"].rstrip(":") + ":/usr/bin:/bin",
        "HOME": str(image.tree),
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "WORKERS": "1",
        "DATABASE_URL": sample_db.dsn(),
        "WS_PROXY": sample_db.ws_proxy,
        "WS_SECURE": "false",
        "PLAYGROUND_DATABASE_URL": f"postgresql://playground:playground@127.0.0.1:{pg.port}/{sample_db.name}",
        "PLAYGROUND_WS_PROXY": sample_db.ws_proxy,
        "PLAYGROUND_WS_SECURE": "false",
    }
    # `env -i -C`: the container's environment only, in its WORKDIR, nothing of this process
    argv = ["env", "-i", "-C", str(image.tree), *(f"{k}={v}" for k, v in env.items()), *image.cmd]
    proc, _ = start_and_wait(argv, "Uvicorn running on", timeout=90)
    try:
        yield Running(f"http://127.0.0.1:{port}", sample_db)
        health = subprocess.run(
            image.healthcheck, env=env, cwd=image.tree, timeout=30, capture_output=True
        )
        assert health.returncode == 0, health.stderr
    finally:
        stop(proc)
    dead = subprocess.run(
        image.healthcheck, env=env, cwd=image.tree, timeout=30, capture_output=True
    )
    assert dead.returncode != 0


def test_image_cmd_serves_the_page_and_the_api(image: Image, served: Running) -> None:
    assert image.cmd[:3] == ["python", "-m", "app.serve"]
    with urllib.request.urlopen(f"{served.base}/healthz", timeout=10) as r:
        assert json.load(r) == {"status": "ok"}
    page = httpx.get(served.base + "/", timeout=10)
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    r = httpx.get(f"{served.base}/api/nearest", params={"lat": 37.77, "lon": -122.41}, timeout=10)
    assert r.status_code == 200, r.text
    assert r.json()["nearestSites"][0]["name_en"] == "Invented bay site"
    # the code answering is the image's copy, not this checkout
    ok = subprocess.run(
        [str(image.venv / "bin" / "python"), "-c", "import app, sys; print(app.__file__)"],
        cwd=image.tree,
        capture_output=True,
        text=True,
        env={},
        check=True,
    )
    assert ok.stdout.strip().startswith(str(image.tree))


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        b = await launch(p)
        try:
            yield b
        finally:
            await b.close()


# The cards' photos are UNESCO's, loaded from UNESCO by design (app/static/app.js); the test
# answers them with this 1x1 GIF instead of letting them leave the machine.
PHOTOS = "https://whc.unesco.org/uploads/sites/"
GIF = bytes.fromhex(
    "47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b"
)


class Offline:
    """Every request the page makes: loopback ones proceed, UNESCO's photos get a stand-in,
    any other is aborted and kept; every failed request or error status is kept too."""

    def __init__(self, page: Page) -> None:
        self.seen: list[str] = []
        self.outside: list[str] = []
        self.photos: list[str] = []
        self.failed: list[str] = []
        self.responses: dict[str, Response] = {}
        page.on("requestfailed", self._failed)
        page.on("response", self._response)

    def _failed(self, request: Request) -> None:
        self.failed.append(f"{request.url}: {request.failure}")

    def _response(self, response: Response) -> None:
        self.responses[response.url] = response
        if response.status >= 400:
            self.failed.append(f"{response.url}: HTTP {response.status}")

    async def route(self, route: Route) -> None:
        url = route.request.url
        self.seen.append(url)
        if urlsplit(url).hostname in ("127.0.0.1", "localhost", "::1"):
            await route.continue_()
        elif url.startswith(PHOTOS):
            self.photos.append(url)
            await route.fulfill(status=200, content_type="image/gif", body=GIF)
        else:
            self.outside.append(url)
            await route.abort()

    async def headers(self, part: str) -> dict[str, str]:
        """The headers the browser got for the one response whose URL holds `part`."""
        urls = [u for u in self.responses if part in u]
        assert len(urls) == 1, (part, urls)
        return await self.responses[urls[0]].all_headers()


async def _page(browser: Browser, **context_options: Any) -> tuple[Page, Offline]:
    context = await browser.new_context(**context_options)
    page = await context.new_page()
    offline = Offline(page)
    await context.route("**/*", offline.route)
    return page, offline


async def _wait(page: Page, offline: Offline, selector: str) -> None:
    """Wait for `selector`; a timeout says which requests failed, the likely reason."""
    try:
        await page.wait_for_selector(selector, state="visible", timeout=30_000)
    except PlaywrightTimeout:
        raise AssertionError(f"no {selector}; failed: {offline.failed}") from None


def _gzip_and_immutable(headers: dict[str, str]) -> bool:
    return headers.get("content-encoding") == "gzip" and headers.get("cache-control") == IMMUTABLE


# Every pixel of the outlines pane's canvas that Leaflet has painted.
PAINTED = """() => {
  const c = document.querySelector('.leaflet-outlines-pane canvas');
  if (!c || !c.width || !c.height) return 0;
  const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let i = 3; i < px.length; i += 4) if (px[i]) n++;
  return n;
}"""


async def test_page_draws_its_map_from_the_image(browser: Browser, served: Running) -> None:
    page, offline = await _page(
        browser,
        geolocation={"latitude": 37.77, "longitude": -122.41},
        permissions=["geolocation"],
        viewport={"width": 1280, "height": 900},
    )
    try:
        await page.goto(f"{served.base}/")
        await _wait(page, offline, "#sites li.card >> nth=9")
        assert await page.locator("#sites h3 a").first.inner_text() == "Invented bay site"
        # Leaflet's script and stylesheet (its panes are positioned by leaflet.css)
        version = json.loads((ROOT / "app/map/node_modules/leaflet/package.json").read_text())
        assert await page.evaluate("window.L && L.version") == version["version"]
        assert (
            await page.evaluate(
                "getComputedStyle(document.querySelector('.leaflet-map-pane')).position"
            )
            == "absolute"
        )
        # the outlines, decoded by topojson-client and painted
        await page.wait_for_function(f"({PAINTED})() > 10000", timeout=30_000)
        # the ten markers, on the map and visible
        markers = page.locator("#map .site-marker")
        assert await markers.count() == 10
        for i in range(10):
            assert await markers.nth(i).is_visible()
        assert offline.failed == [] and offline.outside == []
        assert all(u.startswith(PHOTOS) for u in offline.photos)
        assert _gzip_and_immutable(await offline.headers("/countries-50m.json"))
        assert _gzip_and_immutable(await offline.headers("/leaflet.js"))
    finally:
        await page.context.close()


async def test_docs_work_offline(browser: Browser, served: Running) -> None:
    page, offline = await _page(browser)
    try:
        await page.goto(f"{served.base}/docs")
        title = await page.wait_for_selector(".swagger-ui .info .title", timeout=30_000)
        assert title is not None
        assert "Nearest UNESCO World Heritage sites" in (await title.text_content() or "")
        await page.wait_for_selector(
            ".opblock-summary-path[data-path='/api/nearest']", timeout=30_000
        )
        assert offline.outside == [] and offline.failed == []
        assert any(u.endswith("/openapi.json") for u in offline.seen)
        assert any("/docs/assets/swagger-ui-bundle.js" in u for u in offline.seen)
    finally:
        await page.context.close()


async def test_playground_queries_from_the_image(browser: Browser, served: Running) -> None:
    page, offline = await _page(browser)
    try:
        await page.goto(f"{served.base}/playground/")
        # the editor: CodeMirror with its Python mode (tokens styled) and the brackets addon
        await _wait(page, offline, "#code + .CodeMirror")
        assert await page.locator("#code + .CodeMirror .CodeMirror-code [class^='cm-']").count()
        assert await page.evaluate(
            "['python', 'sql'].every((m) => m in CodeMirror.modes)"
            " && 'matchBrackets' in CodeMirror.defaults"
        )
        await page.wait_for_selector('#status[data-state="ready"]', timeout=120_000)
        text = await page.evaluate(
            "([s, a]) => window.playground.run(s, a)",
            ["SELECT count(*) AS n, current_user AS who FROM whc_sites", []],
        )
        result = json.loads(text)
        assert "error" not in result or not result["error"], result
        assert json.dumps(result).count("241") >= 1 and "playground" in json.dumps(result)
        assert offline.outside == [] and offline.failed == [] and offline.photos == []
        assert _gzip_and_immutable(await offline.headers("/pyodide.asm.wasm"))
    finally:
        await page.context.close()


def test_a_big_asset_is_served_gzipped_and_immutable(image: Image, served: Running) -> None:
    html = httpx.get(f"{served.base}/playground/", timeout=10).text
    path = re.findall(r'"(/assets/pyodide/[0-9a-f]{16}/pyodide\.asm\.wasm)"', html)[0]
    original = (image.tree / "web/pyodide/node_modules/pyodide/pyodide.asm.wasm").read_bytes()
    assert len(original) > 5_000_000
    with httpx.Client(base_url=served.base, timeout=30) as client:
        packed = client.get(path, headers={"Accept-Encoding": "gzip"})
        assert packed.status_code == 200
        assert packed.headers["content-encoding"] == "gzip"
        assert packed.headers["cache-control"] == IMMUTABLE
        assert packed.headers["content-type"] == "application/wasm"
        assert packed.content == original  # httpx has decompressed it
        assert packed.num_bytes_downloaded < 0.5 * len(original)
        plain = client.get(path, headers={"Accept-Encoding": "identity"})
        assert "content-encoding" not in plain.headers and plain.content == original
        assert plain.headers["cache-control"] == IMMUTABLE
        # another version's URL is not this one
        assert client.get(re.sub(r"/[0-9a-f]{16}/", "/0000000000000000/", path)).status_code == 404


def test_image_env_is_what_the_dockerfile_sets(image: Image) -> None:
    assert image.env["PYTHONUNBUFFERED"] == "1" and image.env["PORT"] == "8000"
    assert image.env["PATH"].startswith(str(image.venv / "bin"))
    assert os.access(image.venv / "bin" / "python", os.X_OK)
