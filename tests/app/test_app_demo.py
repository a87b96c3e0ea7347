"""`make demo`'s program end to end: first run creates the cluster and loads the list, Ctrl-C
stops everything, the second run reuses both."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.app.conftest import ROOT, whc_csv_path
from tools.pgcluster import PG_BIN, _pg_user, free_port
from tools.procs import start_and_wait, stop


@pytest.fixture
def demo_dir() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="pgws-demo-"))
    d.chmod(0o755)  # the cluster below runs as the postgres user, which must enter it
    try:
        yield d
    finally:
        datadir = d / "pg" / "data"
        if datadir.exists():  # never leave a server behind, whatever happened
            prefix, _, _ = _pg_user()
            subprocess.run([*prefix, str(PG_BIN / "pg_ctl"), "-D", str(datadir), "-m",
                            "immediate", "stop"], capture_output=True, timeout=60)
        shutil.rmtree(d, ignore_errors=True)


def _run_until_interrupted(demo_dir: Path, port: int) -> list[str]:
    env = {"DEMO_DIR": str(demo_dir), "DEMO_PORT": str(port), "WHC_DATA": str(whc_csv_path())}
    proc, lines = start_and_wait(
        [sys.executable, "-m", "tools.demo"], f"open http://127.0.0.1:{port}/", env=env,
        timeout=110,
    )
    try:
        with urllib.request.urlopen(
            f"http://127.0.0.1:{port}/api/nearest?lat=-13.16&lon=-72.54&limit=3", timeout=10
        ) as r:
            first = json.load(r)["nearestSites"][0]
            assert first["name_en"] == "Historic Sanctuary of Machu Picchu"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as r:
            assert b"World Heritage" in r.read()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0
    finally:
        stop(proc)
    return lines


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_demo_starts_stops_and_reuses(demo_dir: Path) -> None:
    port = free_port()
    first = "\n".join(_run_until_interrupted(demo_dir, port))
    assert "creating a private PostgreSQL + PostGIS cluster" in first
    assert "loaded " in first and "rejected 0 rows" in first
    conf = (demo_dir / "pg" / "data" / "postgresql.conf").read_text()
    assert "shared_preload_libraries = 'postgis-3'" in conf and "ssl = on" in conf
    prefix, _, _ = _pg_user()
    status = subprocess.run([*prefix, str(PG_BIN / "pg_ctl"), "-D", str(demo_dir / "pg" / "data"),
                             "status"], capture_output=True, timeout=30)
    assert status.returncode != 0, "Ctrl-C must stop the cluster"
    assert not _listening(port)

    second = "\n".join(_run_until_interrupted(demo_dir, port))
    assert "starting the existing cluster" in second
    assert "reusing the " in second and "sites already loaded" in second
    assert "creating" not in second and "loading the list" not in second


def test_demo_is_run_by_make_demo() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert ".venv/bin/python -m tools.demo" in makefile
