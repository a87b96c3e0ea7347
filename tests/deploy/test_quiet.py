"""Quiet output: a repeated schema run sends no NOTICE, and building the project's metadata
prints no setuptools licence deprecation warning."""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from app.load import apply_schema
from tests.app.conftest import DB, ROOT


async def test_schema_twice_sends_no_notice(
    scratch_db: DB, caplog: pytest.LogCaptureFixture
) -> None:
    conn = await scratch_db.connect()
    notices: list[str] = []
    conn.add_log_listener(lambda _c, msg: notices.append(str(msg)))
    try:
        with caplog.at_level(logging.DEBUG, logger="driver"):
            await apply_schema(conn)
            await apply_schema(conn)
        # the table and its index are there, once
        assert await conn.fetchval("SELECT to_regclass('whc_sites')::text") == "whc_sites"
        assert await conn.fetchval(
            "SELECT count(*) FROM pg_indexes WHERE indexname = 'whc_sites_location_gist'"
        ) == 1
        # and the check is able to see a notice when one is sent
        await conn.execute("CREATE TABLE IF NOT EXISTS whc_sites (x int)")
    finally:
        await conn.close()
    assert len(notices) == 1 and "already exists" in notices[0], notices
    assert not [r for r in caplog.records if "already exists" in r.getMessage()]


def test_licence_is_an_spdx_string() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["license"] == "Apache-2.0"
    assert project["build-system"]["requires"] == ["setuptools>=77"]


@pytest.mark.timeout(300)
def test_building_the_project_prints_no_deprecation(tmp_path: Path) -> None:
    """What `pip install -e .` runs (an isolated build of the metadata), with its output."""
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
        ".venv", "node_modules", ".git", "test-artifacts", "*.egg-info", "__pycache__", "var"))
    r = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-v", "-w", str(tmp_path / "w"),
         str(src)],
        capture_output=True, text=True, timeout=280,
    )
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    out = r.stdout + r.stderr
    assert "License-Expression: Apache-2.0" in _metadata(tmp_path / "w")
    assert "license` as a TOML table is deprecated" not in out
    assert "SetuptoolsDeprecationWarning" not in out and "BuildBackendWarning" not in out


def _metadata(wheels: Path) -> str:
    import zipfile

    (wheel,) = wheels.glob("pgws-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        return zf.read(name).decode()
