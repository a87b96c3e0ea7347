"""The asset groups (app/assets.py) ship only files that something loads.

A file is loaded when its name is written in one of the pages, the pages' own scripts (the
worker included), or another shipped file (Pyodide's loader names its wasm, Leaflet's CSS its
images). A group admitting a file no one names (the 3.7 MB of world-atlas land-*.json before)
fails here rather than growing the image and the gzip build.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from app.assets import GROUPS, ROOT, WEB_DIR

PAGES = [ROOT / "app" / "static" / "index.html", WEB_DIR / "playground.html"]
TEXT = {".html", ".js", ".mjs", ".css", ".json"}


def _shipped() -> dict[str, Path]:
    files = {f"{name}/{rel}": path for name, g in GROUPS.items() for rel, path in g.files().items()}
    if not files:
        pytest.fail("no asset files found: run scripts/bootstrap.sh (npm ci)")
    return files


def test_every_shipped_asset_is_named_by_what_the_pages_load() -> None:
    shipped = _shipped()
    texts = {p: p.read_text(errors="replace") for p in PAGES}
    texts |= {p: p.read_text(errors="replace") for p in shipped.values() if p.suffix in TEXT}
    unused = [
        key
        for key, path in shipped.items()
        if not any(path.name in text for other, text in texts.items() if other != path)
    ]
    assert unused == []


def test_every_group_a_page_names_exists() -> None:
    for page in PAGES:
        for name in set(part.split("/")[0] for part in page.read_text().split("/assets/")[1:]):
            assert name in GROUPS, (page.name, name)
