"""Front-end files under content-hashed URLs, cached for good and served gzip-precompressed.

The page and the playground load Leaflet, the Natural Earth outlines, CodeMirror, Pyodide and
the driver bundle: about 17 MB before compression. Each group of files gets one URL prefix
holding a hash of its contents (`/assets/pyodide/3f2a…/pyodide.asm.wasm`), so a response may
be cached as `immutable` for a year: a new version is a new URL, never a stale hit. The HTML
pages name assets as `/assets/GROUP/~/FILE` and the `~` is replaced by the group's hash when
the page is served.

Compression happens once, at build time (`python -m app.assets`, run by scripts/bootstrap.sh
and by the browser tests' fixtures): every compressible file gets a gzip copy in
`var/assets/`, named by the SHA-256 of the original, so a copy can never belong to another
version. A missing copy only costs bandwidth: the original is served uncompressed.
"""

from __future__ import annotations

import gzip
import hashlib
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, Response

ROOT = Path(__file__).resolve().parents[1]
MAP_MODULES = ROOT / "app" / "map" / "node_modules"
WEB_DIR = ROOT / "web" / "pyodide"
BUILD_DIR = ROOT / "var" / "assets"

IMMUTABLE = "public, max-age=31536000, immutable"
# Module scripts and streaming wasm compilation need exact types; don't trust /etc/mime.types.
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".wasm": "application/wasm",
    ".zip": "application/zip",
    ".json": "application/json",
    ".map": "application/json",
    ".png": "image/png",
    ".svg": "image/svg+xml",
}
COMPRESSIBLE = {".js", ".mjs", ".css", ".wasm", ".zip", ".json", ".map", ".html", ".svg"}
MIN_GAIN = 0.9  # keep a gzip copy only when it is at most 90% of the original
_PLACEHOLDER = re.compile(r"/assets/([a-z0-9-]+)/~/")


@dataclass(frozen=True)
class Group:
    """Files served under one hashed prefix: a directory and the patterns admitted from it."""

    root: Path
    patterns: tuple[str, ...]

    def files(self) -> dict[str, Path]:
        found: dict[str, Path] = {}
        for pattern in self.patterns:
            for path in sorted(self.root.glob(pattern)):
                if path.is_file():
                    found[path.relative_to(self.root).as_posix()] = path
        return found


GROUPS: dict[str, Group] = {
    "page": Group(ROOT / "app" / "static", ("*.js", "*.css")),
    "leaflet": Group(MAP_MODULES / "leaflet" / "dist", ("leaflet.js", "leaflet.css", "images/*")),
    "topojson": Group(MAP_MODULES / "topojson-client" / "dist", ("topojson-client.min.js",)),
    # The two outline scales app.js loads (1:110m is served apart, by app/page.py).
    "world": Group(MAP_MODULES / "world-atlas", ("countries-50m.json", "countries-10m.json")),
    "codemirror": Group(
        WEB_DIR / "node_modules" / "codemirror",
        (
            "lib/codemirror.js",
            "lib/codemirror.css",
            "mode/python/python.js",
            "mode/sql/sql.js",
            "addon/edit/matchbrackets.js",
        ),
    ),
    "playground": Group(WEB_DIR, ("playground.js", "playground-worker.mjs", "playground.css")),
    "pyodide": Group(
        WEB_DIR / "node_modules" / "pyodide",
        (
            "pyodide.mjs",
            "pyodide.asm.mjs",
            "pyodide.asm.wasm",
            "python_stdlib.zip",
            "pyodide-lock.json",
        ),
    ),
}


def gzip_path(digest: str, build_dir: Path = BUILD_DIR) -> Path:
    return build_dir / f"{digest}.gz"


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass
class _Built:
    """One group as found on disk: its hash and, per file, the path and its own digest."""

    hash: str
    files: dict[str, tuple[Path, str]]


@dataclass
class Generated:
    """A file made by the app itself (the driver bundle): bytes, made once, kept gzipped."""

    name: str
    make: Callable[[], bytes]
    _body: bytes | None = None
    _gz: bytes | None = None
    _hash: str = ""

    def body(self) -> tuple[bytes, bytes, str]:
        if self._body is None:
            self._body = self.make()
            self._gz = gzip.compress(self._body, 9, mtime=0)
            self._hash = hashlib.sha256(self._body).hexdigest()[:16]
        assert self._gz is not None
        return self._body, self._gz, self._hash


@dataclass
class Assets:
    """The groups' hashes (computed on first use, then kept) and their responses."""

    groups: dict[str, Group] = field(default_factory=lambda: dict(GROUPS))
    build_dir: Path = BUILD_DIR
    generated: dict[str, Generated] = field(default_factory=dict)
    _built: dict[str, _Built] = field(default_factory=dict)

    def _group(self, name: str) -> _Built:
        built = self._built.get(name)
        if built is None:
            group = self.groups[name]
            files = {rel: (p, file_digest(p)) for rel, p in group.files().items()}
            h = hashlib.sha256()
            for rel, (_, digest) in sorted(files.items()):
                h.update(f"{rel}\0{digest}\n".encode())
            built = self._built[name] = _Built(h.hexdigest()[:16], files)
        return built

    def url(self, group: str, path: str = "") -> str:
        """The absolute URL of a file (or, with no path, the group's directory)."""
        if group in self.generated:
            return f"/assets/{group}/{self.generated[group].body()[2]}/{self.generated[group].name}"
        return f"/assets/{group}/{self._group(group).hash}/{path}"

    def render(self, html: str) -> str:
        """Replace every `/assets/GROUP/~/` in a page with the group's hashed prefix."""
        return _PLACEHOLDER.sub(lambda m: self.url(m.group(1)), html)

    def response(self, group: str, digest: str, path: str, accept_encoding: str) -> Response:
        gzip_ok = "gzip" in accept_encoding
        headers = {"Cache-Control": IMMUTABLE, "Vary": "Accept-Encoding"}
        media_type = MEDIA_TYPES.get(Path(path).suffix, "application/octet-stream")
        if group in self.generated:
            gen = self.generated[group]
            body, gz, h = gen.body()
            if digest != h or path != gen.name:
                raise HTTPException(404)
            if gzip_ok:
                headers["Content-Encoding"] = "gzip"
                return Response(gz, media_type=media_type, headers=headers)
            return Response(body, media_type=media_type, headers=headers)
        if group not in self.groups:
            raise HTTPException(404)
        built = self._group(group)
        # Only the files listed when the hash was made: no request path ever reaches the disk.
        if digest != built.hash or path not in built.files:
            raise HTTPException(404)
        source, file_hash = built.files[path]
        packed = gzip_path(file_hash, self.build_dir)
        if gzip_ok and packed.is_file():
            headers["Content-Encoding"] = "gzip"
            return FileResponse(packed, media_type=media_type, headers=headers)
        return FileResponse(source, media_type=media_type, headers=headers)

    def build(self, log: Callable[[str], None] = print) -> tuple[int, int]:
        """Write the missing gzip copies; return (bytes of originals, bytes sent gzipped)."""
        self.build_dir.mkdir(parents=True, exist_ok=True)
        raw = packed_total = 0
        for name in self.groups:
            for rel, (path, digest) in self._group(name).files.items():
                size = path.stat().st_size
                raw += size
                target = gzip_path(digest, self.build_dir)
                if path.suffix not in COMPRESSIBLE or size < 1024:
                    packed_total += size
                    continue
                if not target.is_file():
                    data = gzip.compress(path.read_bytes(), 9, mtime=0)
                    if len(data) > size * MIN_GAIN:
                        packed_total += size
                        continue
                    tmp = target.with_suffix(".tmp")
                    tmp.write_bytes(data)
                    tmp.replace(target)
                    log(f"assets: {name}/{rel}: {size:,} -> {len(data):,} bytes")
                packed_total += target.stat().st_size
        return raw, packed_total


def assets_router(assets: Assets) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/assets/{group}/{digest}/{path:path}")
    async def asset(group: str, digest: str, path: str, request: Request) -> Response:
        return assets.response(group, digest, path, request.headers.get("accept-encoding", ""))

    return router


def main() -> None:
    """`python -m app.assets`: precompress every group whose npm packages are installed."""
    assets = Assets()
    missing = [n for n, g in assets.groups.items() if not g.root.is_dir()]
    for name in missing:
        print(f"assets: {name}: {assets.groups[name].root} is missing (npm ci not run?)")
        del assets.groups[name]
    raw, packed = assets.build()
    print(f"assets: {raw:,} bytes, {packed:,} as served compressed, in {assets.build_dir}")
    sys.exit(1 if missing else 0)


if __name__ == "__main__":
    main()
