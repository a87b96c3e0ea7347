"""Session fixtures shared by every test: the private PostgreSQL cluster, the real proxy, and a
live `make demo` (for the README examples)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tools.pgbouncer import Bouncer, start_pgbouncer
from tools.pgcluster import PG_BIN, Cluster, _pg_user, destroy, free_port, start_temp_cluster
from tools.procs import start_and_wait, stop

# The `integration` marker, set here rather than in each module: a test is marked when it uses
# a fixture that starts a real server process or a browser (directly or through another
# fixture), or lives in a module that starts such processes (or a whole tool run: the demo, an
# image build, mypy) itself. `pytest -m "not integration"` (`make check`) is the fast unit tier.
INTEGRATION_FIXTURES = frozenset(
    {
        "pg",
        "proxy",
        "pgbouncer",
        "demo",
        "proxy_factory",
        "browser",
        "open_proxy",
        # tests/proxy's fixtures that start a proxy process
        "lp",
        "fp",
        "tls_proxy",
    }
)
INTEGRATION_PATHS = (
    "tests/app/test_app_demo.py",
    "tests/app/test_app_faults.py",
    "tests/app/test_app_redis.py",
    "tests/deploy/test_compose.py",
    "tests/deploy/test_front.py",
    "tests/deploy/test_image_tree.py",
    "tests/deploy/test_quiet.py",
    "tests/deploy/test_scaleout.py",
    "tests/driver/test_pgbouncer_suite.py",
    "tests/driver/test_tls_fallback.py",
    "tests/driver/test_tls_layers.py",
    "tests/proxy/test_neon_js.py",
    "tests/proxy/test_proxy_admission.py",
    "tests/proxy/test_proxy_drain.py",
    "tests/proxy/test_proxy_memory.py",
    "tests/proxy/test_proxy_refusals.py",
    "tests/proxy/test_sql_http.py",
    "tests/pyodide/",
    "tests/test_asyncpg_suite.py",
    "tests/test_lint.py",
    "tests/test_readme.py",
)
ROOT = Path(__file__).resolve().parent.parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        where = item.path.relative_to(ROOT).as_posix()
        if where.startswith(INTEGRATION_PATHS) or INTEGRATION_FIXTURES.intersection(
            getattr(item, "fixturenames", ())
        ):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def pg() -> Iterator[Cluster]:
    """A private PostgreSQL 15 + PostGIS cluster with TLS and one role per auth method."""
    cluster = start_temp_cluster()
    try:
        yield cluster
    finally:
        destroy(cluster)


class ProxyProcess:
    def __init__(self, port: int, proc: object, sql_port: int | None = None) -> None:
        self.port = port
        self.proc = proc
        self.host = "127.0.0.1"
        self.sql_port = sql_port  # SQL over HTTP (POST /sql), when enabled

    @property
    def sql_url(self) -> str:
        assert self.sql_port is not None, "this proxy has no SQL_HTTP_LISTEN"
        return f"http://{self.host}:{self.sql_port}/sql"

    @property
    def ws_proxy(self) -> str:
        """The driver's `ws_proxy` setting for this proxy (use with use_secure_websocket=False)."""
        return f"{self.host}:{self.port}/v2"

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}/v2"


@contextmanager
def running_proxy(allow_addr_regex: str, **settings: str) -> Iterator[ProxyProcess]:
    """The real proxy process on a free loopback port, allowed to reach only what the regex
    admits (``settings``: more of its environment, e.g. TLS_CERT); stopped (SIGTERM, bounded)
    on exit."""
    port, sql_port = free_port(), free_port()
    env = {
        "LISTEN_PORT": f"127.0.0.1:{port}",
        "SQL_HTTP_LISTEN": f"127.0.0.1:{sql_port}",
        "ALLOW_ADDR_REGEX": allow_addr_regex,
        **settings,
    }
    proc, _ = start_and_wait([sys.executable, "-m", "proxy"], "wsproxy listening", env=env)
    try:
        yield ProxyProcess(port, proc, sql_port if env["SQL_HTTP_LISTEN"] else None)
    finally:
        stop(proc)


@pytest.fixture(scope="session")
def proxy(pg: Cluster) -> Iterator[ProxyProcess]:
    """The real proxy process, allowed to reach only the private cluster."""
    with running_proxy(rf"(127\.0\.0\.1|localhost|\[::1\]):{pg.port}") as p:
        yield p


@pytest.fixture(scope="session")
def pgbouncer(pg: Cluster) -> Iterator[Bouncer]:
    """Debian's pgbouncer in transaction pooling mode in front of the private cluster."""
    bouncer = start_pgbouncer(pg)
    try:
        yield bouncer
    finally:
        bouncer.stop()


@dataclass(frozen=True)
class Demo:
    """A running `make demo` (tools.demo): its database, proxy (WebSocket and SQL over HTTP)
    and app ports."""

    pg: int
    proxy: int
    app: int
    sql: int

    @property
    def dsn(self) -> str:
        return f"postgresql://whc:whc@127.0.0.1:{self.pg}/whc"

    @property
    def ws_proxy(self) -> str:
        return f"127.0.0.1:{self.proxy}/v2"


@pytest.fixture(scope="session")
def demo() -> Iterator[Demo]:
    """The real demo program in a temp DEMO_DIR, on free ports, with the invented sample;
    stopped by Ctrl-C (SIGINT) as a user would, and its cluster removed."""
    d = Path(tempfile.mkdtemp(prefix="pgws-demo-"))
    d.chmod(0o755)  # its cluster runs as the postgres user, which must enter it
    ports = Demo(free_port(), free_port(), free_port(), free_port())
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DEMO_", "WHC_"))}
    env.update(
        DEMO_DIR=str(d),
        WHC_DATA="sample",
        DEMO_PG_PORT=str(ports.pg),
        DEMO_PROXY_PORT=str(ports.proxy),
        DEMO_SQL_PORT=str(ports.sql),
        DEMO_PORT=str(ports.app),
    )
    proc, _ = start_and_wait(
        [sys.executable, "-m", "tools.demo"], "demo: open http://", env=env, timeout=150
    )
    try:
        yield ports
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0
    finally:
        stop(proc)
        prefix, _, _ = _pg_user()
        subprocess.run(
            [
                *prefix,
                str(PG_BIN / "pg_ctl"),
                "-D",
                str(d / "pg" / "data"),
                "-m",
                "immediate",
                "stop",
            ],
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(d, ignore_errors=True)
