"""`make demo`'s program end to end: the first run creates the cluster and loads a list (the
invented sample when no file and no feed are at hand), prints how to use it (the printed driver
snippet and psql command are run here), Ctrl-C stops everything, the second run reuses cluster,
data and ports; a clone in a private folder still starts; environment problems are one message;
the app is served with `python -m app.serve`'s limits (a 64 MiB header is refused at once)."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.serve import uvicorn_options as serve_options
from app.settings import Settings
from tests.app.conftest import ROOT, whc_csv_path
from tests.hugeheader import HUGE, send_huge_header
from tools.demo import cluster_base, uvicorn_options
from tools.pgcluster import PG_BIN, _pg_user, free_port
from tools.procs import start_and_wait, stop


def _stop_cluster(base: Path) -> None:
    datadir = base / "pg" / "data" if (base / "pg").exists() else base / "data"
    if datadir.exists():  # never leave a server behind, whatever happened
        prefix, _, _ = _pg_user()
        subprocess.run(
            [*prefix, str(PG_BIN / "pg_ctl"), "-D", str(datadir), "-m", "immediate", "stop"],
            capture_output=True,
            timeout=60,
        )


@pytest.fixture
def demo_dir() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="pgws-demo-"))
    d.chmod(0o755)  # the cluster below runs as the postgres user, which must enter it
    try:
        yield d
    finally:
        _stop_cluster(d)
        shutil.rmtree(d, ignore_errors=True)


def _env(demo_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DEMO_", "WHC_"))}
    # No file, and a feed address where nothing listens: the demo must fall back to the sample.
    return {
        **env,
        "DEMO_DIR": str(demo_dir),
        "WHC_DATA": "",
        "WHC_FEED_URL": "http://127.0.0.1:9/",
        **extra,
    }


def _start(env: dict[str, str]) -> tuple[subprocess.Popen[bytes], list[str], int]:
    proc, lines = start_and_wait(
        [sys.executable, "-m", "tools.demo"],
        "demo: open http://127.0.0.1:",
        env=env,
        timeout=150,
    )
    port = int(re.findall(r"open http://127\.0\.0\.1:(\d+)/", lines[-1])[0])
    return proc, lines, port


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as r:
        return bytes(r.read())


def _post_sql(endpoint: str, dsn: str, query: str) -> bytes:
    request = urllib.request.Request(
        endpoint,
        data=json.dumps({"query": query, "params": []}).encode(),
        headers={"Neon-Connection-String": dsn, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as r:
        return bytes(r.read())


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def printed_snippet(lines: list[str]) -> str:
    """The driver snippet the demo printed, as the user would paste it."""
    start = next(i for i, line in enumerate(lines) if "the driver through the proxy" in line)
    end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("demo: "))
    return "\n".join(lines[start + 1 : end]) + "\n"


def printed_psql(lines: list[str]) -> list[str]:
    start = next(i for i, line in enumerate(lines) if line.startswith("demo: psql"))
    return shlex.split(lines[start + 1])


def _interrupt(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGINT)
    assert proc.wait(60) == 0


def test_demo_with_no_data_loads_the_sample_and_says_how_to_use_it(demo_dir: Path) -> None:
    ports = {
        "DEMO_PG_PORT": free_port(),
        "DEMO_PROXY_PORT": free_port(),
        "DEMO_SQL_PORT": free_port(),
        "DEMO_PORT": free_port(),
    }
    proc, lines, app_port = _start(_env(demo_dir, **{k: str(v) for k, v in ports.items()}))
    try:
        text = "\n".join(lines)
        assert "creating a private PostgreSQL + PostGIS cluster" in text
        assert "loading the invented sample list instead" in text
        assert "SAMPLE DATA: the sites are invented" in text and "WHC_DATA=FILE" in text
        assert "Traceback" not in text
        assert app_port == ports["DEMO_PORT"]
        db = f"postgresql://whc:whc@127.0.0.1:{ports['DEMO_PG_PORT']}/whc"
        assert f"page       http://127.0.0.1:{app_port}/" in text
        assert f"API docs   http://127.0.0.1:{app_port}/docs" in text
        assert f"database   {db}" in text
        assert f"proxy      ws://127.0.0.1:{ports['DEMO_PROXY_PORT']}/v2" in text
        assert f"sql        http://127.0.0.1:{ports['DEMO_SQL_PORT']}/sql" in text
        meta = json.loads(_get(f"http://127.0.0.1:{app_port}/api/meta"))
        assert meta["sample"] is True and "app.load" in meta["howToLoad"]
        assert b"sample-banner" in _get(f"http://127.0.0.1:{app_port}/")
        assert b"swagger" in _get(f"http://127.0.0.1:{app_port}/docs").lower()

        # the printed snippet, run as printed, goes through the proxy and reads the table
        snippet = printed_snippet(lines)
        assert f'ws_proxy="127.0.0.1:{ports["DEMO_PROXY_PORT"]}/v2"' in snippet
        run = subprocess.run(
            [sys.executable, "-c", snippet], capture_output=True, text=True, timeout=60, cwd=ROOT
        )
        assert run.returncode == 0, run.stderr
        assert "<Record id_no=1 " in run.stdout and run.stdout.count("<Record") == 3
        # the printed SQL-over-HTTP endpoint answers for the demo's database, and only for it
        endpoint = f"http://127.0.0.1:{ports['DEMO_SQL_PORT']}/sql"
        doc = json.loads(_post_sql(endpoint, db, "select count(*) as n from whc_sites"))
        assert doc["rowCount"] == 1 and doc["fields"][0]["name"] == "n"
        other = f"postgresql://whc:whc@127.0.0.1:{free_port()}/whc"
        with pytest.raises(urllib.error.HTTPError) as refused:
            _post_sql(endpoint, other, "select 1")
        assert 400 <= refused.value.code < 500
        # and so does the printed psql command
        psql = subprocess.run(
            [*printed_psql(lines), "-XAtc", "SELECT count(*) FROM whc_sites"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert psql.returncode == 0, psql.stderr
        assert int(psql.stdout) > 1000
        _interrupt(proc)
    finally:
        stop(proc)
    assert not any(_listening(p) for p in ports.values())

    # the second run needs no port settings: the ones kept with the cluster come back
    proc, lines, again = _start(_env(demo_dir))
    try:
        text = "\n".join(lines)
        assert "starting the existing cluster" in text and "creating" not in text
        assert "reusing the 1200 sites of the invented sample already loaded" in text
        assert again == ports["DEMO_PORT"]
        assert f":{ports['DEMO_PG_PORT']}/whc" in text
        assert f"ws://127.0.0.1:{ports['DEMO_PROXY_PORT']}/v2" in text
        assert f"http://127.0.0.1:{ports['DEMO_SQL_PORT']}/sql" in text
        _interrupt(proc)
    finally:
        stop(proc)


def test_demo_loads_the_real_export_when_given(demo_dir: Path) -> None:
    real = whc_csv_path()
    if real is None:
        pytest.skip(
            "the real UNESCO 2021 CSV export is not on this machine (set WHC_DATA or "
            "put it at ../shared/data/whc-sites-2021.csv)"
        )
    proc, lines, port = _start(
        _env(
            demo_dir,
            WHC_DATA=str(real),
            DEMO_PORT=str(free_port()),
            DEMO_PG_PORT=str(free_port()),
            DEMO_PROXY_PORT=str(free_port()),
        )
    )
    try:
        text = "\n".join(lines)
        assert "rejected 0 rows" in text and "SAMPLE DATA" not in text
        first = json.loads(
            _get(f"http://127.0.0.1:{port}/api/nearest?lat=-13.16&lon=-72.54&limit=3")
        )["nearestSites"][0]
        assert first["name_en"] == "Historic Sanctuary of Machu Picchu"
        assert json.loads(_get(f"http://127.0.0.1:{port}/api/meta"))["sample"] is False
        _interrupt(proc)
    finally:
        stop(proc)


def test_demo_in_a_private_folder_moves_its_cluster(tmp_path: Path) -> None:
    """A clone under /root (mode 700): the postgres user cannot enter it, so the cluster lives
    where it can, and the demo says where."""
    if os.geteuid() != 0:
        pytest.skip("only root runs Postgres as another user (the suite runs as root in CI)")
    private = tmp_path / "root-like"
    private.mkdir(mode=0o700)
    private.chmod(0o700)
    demo_dir = private / "clone" / "var" / "demo"
    base = cluster_base(demo_dir)
    assert base.parent == Path("/var/tmp") and base.name.startswith("pgws-demo-")
    try:
        proc, lines, port = _start(
            _env(
                demo_dir,
                DEMO_PORT=str(free_port()),
                DEMO_PG_PORT=str(free_port()),
                DEMO_PROXY_PORT=str(free_port()),
            )
        )
        try:
            text = "\n".join(lines)
            assert "the postgres user cannot enter" in text and str(base) in text
            assert "Traceback" not in text
            assert json.loads(_get(f"http://127.0.0.1:{port}/api/meta"))["sample"] is True
            _interrupt(proc)
        finally:
            stop(proc)
    finally:
        _stop_cluster(base)
        shutil.rmtree(base, ignore_errors=True)


def _run_demo(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`python -m tools.demo` to its end (these runs fail before anything starts)."""
    return subprocess.run(
        [sys.executable, "-m", "tools.demo"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env=env,
    )


def test_environment_problems_are_one_message_without_traceback(demo_dir: Path) -> None:
    r = _run_demo(_env(demo_dir, PG_BIN="/nonexistent/bin"))
    assert r.returncode == 1
    assert "PostgreSQL 15 is not installed" in r.stderr and "make bootstrap" in r.stderr
    assert "Traceback" not in r.stderr
    r = _run_demo(_env(demo_dir, WHC_DATA="/nonexistent.csv"))
    assert r.returncode == 1 and "no such file" in r.stderr and "Traceback" not in r.stderr
    r = _run_demo(_env(demo_dir, DEMO_PG_PORT="fifty"))
    assert r.returncode == 1 and "not a port number" in r.stderr and "Traceback" not in r.stderr


def test_demo_is_run_by_make_demo() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert ".venv/bin/python -m tools.demo" in makefile


def test_demo_serves_with_app_serves_limits() -> None:
    settings = Settings(
        host="127.0.0.1",
        port=8123,
        workers=4,
        max_header_bytes=4096,
        limit_concurrency=7,
        backlog=9,
        timeout_keep_alive_s=3,
    )
    demo = uvicorn_options(settings)
    assert demo == {**serve_options(settings), "workers": 1}
    assert demo["http"] == "h11" and demo["h11_max_incomplete_event_size"] == 4096
    assert demo["limit_concurrency"] == 7 and demo["timeout_keep_alive"] == 3


def test_demo_refuses_a_64_mib_header_quickly(demo_dir: Path) -> None:
    ports = ("DEMO_PORT", "DEMO_PG_PORT", "DEMO_PROXY_PORT", "DEMO_SQL_PORT")
    proc, _, port = _start(
        _env(demo_dir, WHC_DATA="sample", **{name: str(free_port()) for name in ports})
    )
    try:
        for _ in range(2):
            head, sent, took = send_huge_header("127.0.0.1", port)
            assert head.startswith(b"HTTP/1.1 400"), head[:200]
            assert took < 3.0 and sent < HUGE, (took, sent)
        assert json.loads(_get(f"http://127.0.0.1:{port}/healthz")) == {"status": "ok"}
        _interrupt(proc)
    finally:
        stop(proc)
