"""The real Neon serverless driver (npm, pinned by package-lock.json) works through our proxy,
configured only with its documented options (wsProxy, useSecureWebSocket, pipelineConnect,
forceDisablePgSSL, webSocketConstructor)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ProxyProcess
from tests.proxy.conftest import ProxyProc
from tools.pgcluster import Cluster

JS = Path(__file__).parent / "js"


@pytest.fixture(scope="session")
def neon_js() -> Path:
    """Install the locked packages if bootstrap has not (npm ci is exact and offline-safe)."""
    if not (JS / "node_modules" / "@neondatabase" / "serverless").is_dir():
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=JS,
            check=True,
            timeout=300,
        )
    return JS / "neon.mjs"


async def _run(
    script: Path, case: str, dsn: str, proxy: ProxyProcess | ProxyProc, pipeline: bool
) -> Any:
    env = {
        **os.environ,
        "DSN": dsn,
        "WS_PROXY": f"127.0.0.1:{proxy.port}/v2",
        "PIPELINE": "password" if pipeline else "false",
    }
    proc = await asyncio.create_subprocess_exec(
        "node",
        str(script),
        case,
        cwd=JS,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()[-2000:]
    return json.loads(out.decode().strip().splitlines()[-1])


async def test_query_with_pipelined_cleartext_password(
    pg: Cluster, proxy: ProxyProcess, neon_js: Path
) -> None:
    row = await _run(neon_js, "query", pg.dsn("clear_user"), proxy, pipeline=True)
    assert row == {"answer": 42, "who": "clear_user", "echo": "ü→ok"}


async def test_query_with_scram_and_no_pipelining(
    pg: Cluster, proxy: ProxyProcess, neon_js: Path
) -> None:
    row = await _run(neon_js, "query", pg.dsn("scram_user"), proxy, pipeline=False)
    assert row["who"] == "scram_user" and row["answer"] == 42


async def test_transaction(pg: Cluster, proxy: ProxyProcess, neon_js: Path) -> None:
    out = await _run(neon_js, "transaction", pg.dsn("scram_user"), proxy, pipeline=False)
    assert out == {"inside": 5, "after": {"s": 15, "n": 5}}


async def test_ten_megabyte_result(pg: Cluster, proxy: ProxyProcess, neon_js: Path) -> None:
    out = await _run(neon_js, "big", pg.dsn("clear_user"), proxy, pipeline=True)
    assert out == {"rows": 10, "bytes": 10 * 1048576, "ok": True}


async def test_log_traffic_shows_types_and_sizes_never_payloads(pg: Cluster, neon_js: Path) -> None:
    """The pipelined connect is visible in the traffic log (startup and password message in
    the first client write), and the password itself never is."""
    p = ProxyProc({"ALLOW_ADDR_REGEX": rf"127\.0\.0\.1:{pg.port}", "LOG_TRAFFIC": "true"})
    try:
        row = await _run(neon_js, "query", pg.dsn("clear_user"), p, pipeline=True)
        assert row["who"] == "clear_user"
        first = p.wait_for(r"conn \d+ ws->tcp \d+ bytes:")
        assert "bytes: StartupMessage p " in first  # the query rides along too
        p.wait_for(r"conn \d+ tcp->ws \d+ bytes: R(\*\d+)? .*Z")
        p.wait_for(r"conn \d+ ws->tcp \d+ bytes: .*P")  # Parse: extended query with $1
        p.wait_for(r"conn \d+ close")
    finally:
        p.stop()
    password = pg.password("clear_user")
    assert password and password not in p.log and password.encode().hex() not in p.log
    assert "ü→ok" not in p.log  # query parameters stay out of the log too
