"""The /playground page: Python in the visitor's browser (Pyodide) querying the demo database.

The server only hands out files: the page, the pinned Pyodide runtime from the npm package in
web/pyodide/, and one zip holding the driver's source plus its pure-Python dependencies, all
from this machine (no CDN). The queries go from the browser straight to the WebSocket proxy, as
the read-only `playground` role (sql/playground_role.sql), so the privileges and the timeouts
that protect the database are enforced by Postgres, not by the page.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import io
import json
import os
import zipfile
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from fastapi import APIRouter, FastAPI, HTTPException
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from app.assets import Assets, Generated, assets_router

__all__ = ["PlaygroundConfig", "create_playground_app", "playground_router"]

WEB_DIR = Path(__file__).resolve().parents[1] / "web" / "pyodide"
# Packages copied into the browser: the driver and what it imports at run time there. The
# third-party ones bring their METADATA too, since scramp asks importlib.metadata for its version.
BUNDLED_PACKAGES = ("driver", "scramp", "asn1crypto")
_DISTRIBUTIONS = {"scramp": "scramp", "asn1crypto": "asn1crypto"}
# The page's own Python module, shipped in the same zip so one fetch brings all the code.
PAGE_MODULE = "pgws_playground.py"
PAGE_FILES = {"": "playground.html", "playground.js": "playground.js"}
STORED_SUFFIXES = (".py", ".typed")

# Module scripts and streaming wasm compilation need exact types; don't trust /etc/mime.types.
_MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".wasm": "application/wasm",
    ".zip": "application/zip",
    ".json": "application/json",
    ".map": "application/json",
}


@dataclass(frozen=True, slots=True)
class PlaygroundConfig:
    """What the page needs to connect; all of it reaches every visitor's browser.

    Attributes:
        database_url: DSN of the read-only playground role, with the host and port as the proxy
            sees them. Its password is public by design: the role's grants are the protection.
        ws_proxy: the proxy as the browser reaches it, e.g. "db-proxy.example.org/v2".
        use_secure_websocket: wss:// (True) or ws:// (False) to the proxy.
        row_limit: rows the page shows per result (a courtesy; statement_timeout is the bound).
    """

    database_url: str
    ws_proxy: str
    use_secure_websocket: bool = True
    row_limit: int = 200


def _bundle(packages: Iterable[str], page_module: Path) -> bytes:
    """Zip the packages' source files as installed here, for `pyodide.unpackArchive`."""
    buf = io.BytesIO()
    # Stored, not deflated: the whole zip is gzipped once for HTTP, which compresses better.
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for name in packages:
            spec = importlib.util.find_spec(name)
            if spec is None or not spec.submodule_search_locations:
                raise RuntimeError(f"playground: package {name!r} is not installed")
            root = Path(next(iter(spec.submodule_search_locations)))
            for path in sorted(root.rglob("*")):
                if "__pycache__" in path.parts or not path.is_file():
                    continue
                if path.suffix in (".py", ".typed"):
                    zf.write(path, f"{name}/{path.relative_to(root).as_posix()}")
            if name in _DISTRIBUTIONS:
                dist = importlib.metadata.distribution(_DISTRIBUTIONS[name])
                info = f"{dist.name}-{dist.version}.dist-info"
                zf.writestr(f"{info}/METADATA", dist.read_text("METADATA") or "")
        zf.write(page_module, page_module.name)
    return buf.getvalue()


def playground_router(
    config: PlaygroundConfig, *, web_dir: Path = WEB_DIR, assets: Assets | None = None
) -> APIRouter:
    """Build the router serving /playground/ and its files.

    Include it with `app.include_router(playground_router(config, assets=assets))` next to
    `assets_router(assets)`, which serves Pyodide, CodeMirror and the driver bundle under
    hashed, immutable URLs. Everything is read from disk on first use, so building the router
    costs nothing at import or startup.

    Args:
        config: connection settings handed to the page.
        web_dir: the directory holding the page files and node_modules/pyodide (tests only).
        assets: the app's asset registry (a new one when omitted).
    """
    router = APIRouter(prefix="/playground", tags=["playground"])
    pyodide_dir = web_dir / "node_modules" / "pyodide"
    cache: dict[str, bytes] = {}
    assets = assets or Assets()
    assets.generated["driver"] = Generated(
        "driver.zip", lambda: _bundle(BUNDLED_PACKAGES, web_dir / PAGE_MODULE)
    )
    rendered: dict[str, str] = {}

    @router.get("", include_in_schema=False)
    async def _redirect() -> RedirectResponse:
        # The page uses relative URLs, which resolve under /playground/ only with the slash.
        return RedirectResponse("playground/", status_code=308)

    @router.get("/", include_in_schema=False)
    async def page() -> HTMLResponse:
        # Revalidated on every visit; the hashed asset URLs inside it are cached for good.
        if "page" not in rendered:
            rendered["page"] = assets.render((web_dir / PAGE_FILES[""]).read_text())
        return HTMLResponse(rendered["page"], headers={"Cache-Control": "no-cache"})

    @router.get("/playground.js", include_in_schema=False)
    async def script() -> FileResponse:
        return _file(web_dir / PAGE_FILES["playground.js"])

    @router.get("/config.json")
    async def page_config() -> Response:
        body = json.dumps(
            {**asdict(config), "bundle": assets.url("driver"), "pyodide": assets.url("pyodide")}
        )
        return Response(body, media_type="application/json", headers={"Cache-Control": "no-store"})

    @router.get("/driver.zip", include_in_schema=False)
    async def bundle() -> Response:
        if "bundle" not in cache:
            cache["bundle"] = _bundle(BUNDLED_PACKAGES, web_dir / PAGE_MODULE)
        return Response(cache["bundle"], media_type="application/zip")

    @router.get("/pyodide/{name}", include_in_schema=False)
    async def pyodide_file(name: str) -> FileResponse:
        # Only plain file names found in the package directory: no path ever reaches the disk.
        if not pyodide_dir.is_dir():
            raise HTTPException(503, "Pyodide is not installed: run `npm ci` in web/pyodide")
        allowed = {p.name for p in pyodide_dir.iterdir() if p.is_file()}
        if name not in allowed:
            raise HTTPException(404)
        return _file(pyodide_dir / name)

    return router


def _file(path: Path) -> FileResponse:
    return FileResponse(path, media_type=_MEDIA_TYPES.get(path.suffix, "application/octet-stream"))


def create_playground_app(config: PlaygroundConfig | None = None) -> FastAPI:
    """A FastAPI app serving only the playground, for the browser tests and for trying it alone.

    `uvicorn --factory app.playground:create_playground_app` reads PLAYGROUND_DATABASE_URL,
    PLAYGROUND_WS_PROXY and PLAYGROUND_WS_SECURE (1/0) when no config is given.
    """
    if config is None:
        config = PlaygroundConfig(
            database_url=os.environ["PLAYGROUND_DATABASE_URL"],
            ws_proxy=os.environ["PLAYGROUND_WS_PROXY"],
            use_secure_websocket=os.environ.get("PLAYGROUND_WS_SECURE", "1") == "1",
        )
    app = FastAPI(title="pgws playground")
    assets = Assets()
    app.include_router(playground_router(config, assets=assets))
    app.include_router(assets_router(assets))
    return app
