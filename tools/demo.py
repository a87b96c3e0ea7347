"""`make demo`: a private Postgres+PostGIS cluster, the UNESCO list, the proxy and the app on
this machine, with one command. Ctrl-C stops everything; running it again reuses the cluster
and the loaded data (kept under var/demo, which git ignores).

Environment: WHC_DATA (the list to load; default ../shared/data/whc-sites-2021.csv when it
exists, else the UNESCO feed is downloaded), DEMO_DIR (default var/demo), DEMO_PORT (default
8000), DEMO_RELOAD=1 (load the list again even if the table has rows).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import uvicorn

from tools.pgcluster import Cluster, free_port
from tools.procs import start_and_wait, stop

ROOT = Path(__file__).resolve().parent.parent
SHARED_CSV = ROOT.parent / "shared" / "data" / "whc-sites-2021.csv"
DB_NAME = "whc"
ROLE = "scram_user"  # SCRAM-SHA-256 over TLS-capable loopback, like a hosted database
# A fresh backend's first PostGIS query otherwise pays for loading the library (README,
# "First query on a fresh connection").
PG_CONF = {"shared_preload_libraries": "'postgis-3'"}

log = logging.getLogger("demo")


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _cluster(base: Path) -> Cluster:
    """Start the private cluster, creating it on first run (its port is kept in its config)."""
    conf = base / "data" / "postgresql.conf"
    if conf.exists():
        ports = re.findall(r"^port = (\d+)$", conf.read_text(), re.M)
        cluster = Cluster(base=base, port=int(ports[-1]), extra_conf=PG_CONF)
        if cluster.is_running():
            log.info("reusing the running cluster in %s (port %d)", base, cluster.port)
        else:
            log.info("starting the existing cluster in %s (port %d)", base, cluster.port)
            cluster.start()
        return cluster
    log.info("creating a private PostgreSQL + PostGIS cluster in %s", base)
    cluster = Cluster(base=base, port=free_port(), extra_conf=PG_CONF)
    cluster.init()
    return cluster


def _database(cluster: Cluster) -> None:
    if not cluster.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DB_NAME}'", db="postgres"):
        cluster.psql(f'CREATE DATABASE {DB_NAME} OWNER "{ROLE}"', db="postgres")
        cluster.psql("CREATE EXTENSION IF NOT EXISTS postgis", db=DB_NAME)


def _source() -> Path | None:
    env = os.environ.get("WHC_DATA")
    if env:
        return Path(env)
    return SHARED_CSV if SHARED_CSV.is_file() else None


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="demo: %(message)s")
    # SIGTERM (e.g. `timeout`, a process manager) must tidy up like Ctrl-C: without this the
    # interpreter dies without running the finally below and leaves Postgres running.
    signal.signal(signal.SIGTERM, _interrupt)
    logging.getLogger("app").setLevel(logging.INFO)
    base = Path(os.environ.get("DEMO_DIR", ROOT / "var" / "demo")).resolve()
    app_port = int(os.environ.get("DEMO_PORT", "8000"))
    if not _port_free(app_port):
        log.info("port %d is taken; using another one", app_port)
        app_port = free_port()
    cluster = _cluster(base / "pg")
    proxy: subprocess.Popen[bytes] | None = None
    try:
        _database(cluster)
        proxy_port = free_port()
        proxy, _ = start_and_wait(
            [sys.executable, "-m", "proxy"], "listening",
            env={
                "LISTEN_PORT": f"127.0.0.1:{proxy_port}",
                "ALLOW_ADDR_REGEX": rf"127\.0\.0\.1:{cluster.port}",
                "PYTHONPATH": str(ROOT),
            },
        )
        log.info("proxy listening on 127.0.0.1:%d", proxy_port)
        return _serve(cluster, proxy_port, app_port)
    except KeyboardInterrupt:
        return 0
    finally:
        log.info("stopping the proxy and the cluster")
        if proxy is not None:
            stop(proxy)
        cluster.stop()


def _serve(cluster: Cluster, proxy_port: int, app_port: int) -> int:
    from app.load import load
    from app.main import create_app
    from app.settings import Settings
    from app.sources import SourceError

    dsn = cluster.dsn(ROLE).replace("/testdb", f"/{DB_NAME}")
    settings = Settings(
        database_url=dsn, ws_proxy=f"127.0.0.1:{proxy_port}/v2", ws_secure=False,
        db_mode="pool", whc_data=_source(),
    )
    have = 0
    if cluster.psql("SELECT to_regclass('whc_sites') IS NOT NULL", db=DB_NAME) == "t":
        have = int(cluster.psql("SELECT count(*) FROM whc_sites", db=DB_NAME))
    if have > 0 and os.environ.get("DEMO_RELOAD") != "1":
        log.info("reusing the %s sites already loaded (DEMO_RELOAD=1 loads again)", have)
    else:
        log.info("loading the list from %s", settings.whc_data or "the UNESCO feed")
        try:
            result = asyncio.run(load(settings, settings.whc_data))
        except SourceError as exc:
            log.error("%s", exc)
            return 2
        log.info("loaded %d sites, rejected %d rows", result.loaded, len(result.rejected))
    # The /playground page's read-only role (visitors' browsers connect as it, through the proxy).
    cluster.psql((ROOT / "sql" / "playground_role.sql").read_text(), db=DB_NAME)
    settings = settings.model_copy(
        update={
            "playground_database_url": f"postgresql://playground:playground@127.0.0.1:"
            f"{cluster.port}/{DB_NAME}"
        }
    )
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=app_port, proxy_headers=False,
        log_level="warning", access_log=False,
    )
    server = _AnnouncingServer(config)
    server.run()
    return 0


class _AnnouncingServer(uvicorn.Server):
    """Prints the URL only once the socket accepts connections."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            log.info(
                "open http://127.0.0.1:%d/  (API docs at /docs; Ctrl-C stops everything)",
                self.config.port,
            )


if __name__ == "__main__":
    raise SystemExit(main())
