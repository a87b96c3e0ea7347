"""The image without a Docker engine: its file tree built from a clone through .dockerignore,
its virtualenv installed from requirements.lock alone, its CMD and HEALTHCHECK run as the
container would, and the service exercised from it: `/`, `/api/nearest`, `/docs` and
`/playground` in Chromium, with every request the browser makes kept on loopback."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import Browser, Page, Route, async_playwright

from tests.app.conftest import DB
from tests.deploy.imagetree import ROOT, Image, build_image, excluded, ignore_rules
from tests.pyodide.conftest import CHROMIUM_ARGS
from tools.pgcluster import free_port
from tools.procs import start_and_wait, stop

pytestmark = pytest.mark.timeout(900)


def test_dockerignore_rules() -> None:
    rules = ignore_rules((ROOT / ".dockerignore").read_text())
    assert not excluded("app/main.py", rules)
    assert not excluded("web/pyodide/playground.html", rules)
    assert not excluded("requirements.lock", rules)
    for path in ("tests/conftest.py", ".venv/bin/python", "app/map/node_modules/x/y.json",
                 "app/__pycache__/main.cpython-311.pyc", "Dockerfile", ".git/config",
                 "web/pyodide/node_modules/pyodide/pyodide.mjs"):
        assert excluded(path, rules), path


@pytest.fixture(scope="module")
def image() -> Iterator[Image]:
    with tempfile.TemporaryDirectory(prefix="pgws-image-") as work:
        yield build_image(Path(work))


def test_image_tree_holds_what_it_needs_and_nothing_else(image: Image) -> None:
    assert not any(p.startswith(("tests/", "tools/", "bench/", ".ci/")) for p in image.context)
    for need in ("app/main.py", "sql/schema.sql", "web/pyodide/playground.html",
                 "web/pyodide/node_modules/pyodide/pyodide.mjs",
                 "app/swagger/node_modules/swagger-ui-dist/swagger-ui-bundle.js",
                 "app/map/node_modules/world-atlas/countries-110m.json"):
        assert (image.tree / need).is_file(), need
    # the venv holds the locked versions exactly, and not the project or the test tools
    freeze = subprocess.run([str(image.venv / "bin" / "python"), "-m", "pip", "freeze"],
                            capture_output=True, text=True, check=True).stdout
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
        "PLAYGROUND_DATABASE_URL":
            f"postgresql://playground:playground@127.0.0.1:{pg.port}/{sample_db.name}",
        "PLAYGROUND_WS_PROXY": sample_db.ws_proxy,
        "PLAYGROUND_WS_SECURE": "false",
    }
    # `env -i -C`: the container's environment only, in its WORKDIR, nothing of this process
    argv = ["env", "-i", "-C", str(image.tree), *(f"{k}={v}" for k, v in env.items()), *image.cmd]
    proc, _ = start_and_wait(argv, "Uvicorn running on", timeout=90)
    try:
        yield Running(f"http://127.0.0.1:{port}", sample_db)
        health = subprocess.run(image.healthcheck, env=env, cwd=image.tree, timeout=30,
                                capture_output=True)
        assert health.returncode == 0, health.stderr
    finally:
        stop(proc)
    dead = subprocess.run(image.healthcheck, env=env, cwd=image.tree, timeout=30,
                          capture_output=True)
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
    ok = subprocess.run([str(image.venv / "bin" / "python"), "-c",
                         "import app, sys; print(app.__file__)"],
                        cwd=image.tree, capture_output=True, text=True, env={}, check=True)
    assert ok.stdout.strip().startswith(str(image.tree))


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            await b.close()


class Offline:
    """Every request the page makes: loopback ones proceed, any other is aborted and kept."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.outside: list[str] = []

    async def route(self, route: Route) -> None:
        url = route.request.url
        self.seen.append(url)
        if urlsplit(url).hostname in ("127.0.0.1", "localhost", "::1"):
            await route.continue_()
        else:
            self.outside.append(url)
            await route.abort()


async def _page(browser: Browser) -> tuple[Page, Offline]:
    context = await browser.new_context()
    offline = Offline()
    await context.route("**/*", offline.route)
    return await context.new_page(), offline


async def test_docs_work_offline(browser: Browser, served: Running) -> None:
    page, offline = await _page(browser)
    try:
        await page.goto(f"{served.base}/docs")
        title = await page.wait_for_selector(".swagger-ui .info .title", timeout=30_000)
        assert title is not None
        assert "Nearest UNESCO World Heritage sites" in (await title.text_content() or "")
        await page.wait_for_selector(".opblock-summary-path[data-path='/api/nearest']",
                                     timeout=30_000)
        assert offline.outside == []
        assert any(u.endswith("/openapi.json") for u in offline.seen)
        assert any("/docs/assets/swagger-ui-bundle.js" in u for u in offline.seen)
    finally:
        await page.context.close()


async def test_playground_queries_from_the_image(browser: Browser, served: Running) -> None:
    page, offline = await _page(browser)
    try:
        await page.goto(f"{served.base}/playground/")
        await page.wait_for_selector('#status[data-state="ready"]', timeout=120_000)
        text = await page.evaluate(
            "([s, a]) => window.playground.run(s, a)",
            ["SELECT count(*) AS n, current_user AS who FROM whc_sites", []],
        )
        result = json.loads(text)
        assert "error" not in result or not result["error"], result
        assert json.dumps(result).count("241") >= 1 and "playground" in json.dumps(result)
        assert offline.outside == []
    finally:
        await page.context.close()


def test_image_env_is_what_the_dockerfile_sets(image: Image) -> None:
    assert image.env["PYTHONUNBUFFERED"] == "1" and image.env["PORT"] == "8000"
    assert image.env["PATH"].startswith(str(image.venv / "bin"))
    assert os.access(image.venv / "bin" / "python", os.X_OK)
