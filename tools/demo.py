"""`make demo`: a private Postgres+PostGIS cluster, the World Heritage list, the proxy and the app
on this machine, with one command. Ctrl-C stops everything; running it again reuses the cluster,
the loaded data and the ports (kept with the cluster, under var/demo, which git ignores).

Environment:
    WHC_DATA        the list to load (a saved XML feed or the CSV export); default
                    ../shared/data/whc-sites-2021.csv when it exists, else the UNESCO feed is
                    downloaded, and when that fails the invented sample (app/sample.py) is
                    loaded and the page says so. `WHC_DATA=sample` asks for the sample; an
                    empty WHC_DATA skips the default file.
    WHC_FEED_URL    the feed to try (default: UNESCO's).
    DEMO_DIR        where the cluster lives (default var/demo). When the `postgres` user cannot
                    enter it (a clone under /root, mode 700), the cluster lives in
                    /var/tmp/pgws-demo-<hash of DEMO_DIR> instead, and the log says so.
    DEMO_PG_PORT, DEMO_PROXY_PORT, DEMO_SQL_PORT, DEMO_PORT
                    Postgres, proxy (WebSocket), proxy (SQL over HTTP, POST /sql) and app ports
                    (defaults 5433, 9876, 9877, 8000; a default that is taken on the first run
                    is replaced by a free port). Kept for the next run.
    DEMO_RELOAD=1   load the list again even if the table has rows.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import uvicorn

from tools.pgcluster import PG_BIN, Cluster, _pg_user, free_port
from tools.procs import ReadyTimeout, start_and_wait, stop

ROOT = Path(__file__).resolve().parent.parent
SHARED_CSV = ROOT.parent / "shared" / "data" / "whc-sites-2021.csv"
DB_NAME = "whc"
# A role and password fine to print: the cluster listens on loopback only.
ROLE = PASSWORD = "whc"
DEFAULT_PORTS = {"pg": 5433, "proxy": 9876, "sql": 9877, "app": 8000}
PORT_ENV = {
    "pg": "DEMO_PG_PORT",
    "proxy": "DEMO_PROXY_PORT",
    "sql": "DEMO_SQL_PORT",
    "app": "DEMO_PORT",
}
# A fresh backend's first PostGIS query otherwise pays for loading the library (README,
# "Fresh backends and PostGIS").
PG_CONF = {"shared_preload_libraries": "'postgis-3'"}

if TYPE_CHECKING:  # imported when serving, so the machine checks answer at once
    from app.settings import Settings

log = logging.getLogger("demo")


class DemoError(Exception):
    """A problem of this machine's set-up: said in one message with what to do, no traceback."""


@dataclass
class Ports:
    pg: int
    proxy: int
    sql: int  # the proxy's SQL-over-HTTP listener (POST /sql)
    app: int


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _postgres_can_enter(path: Path) -> bool:
    """Whether the user the cluster runs as can reach `path` (every parent must be +x)."""
    prefix, _, _ = _pg_user()
    if not prefix:
        return True  # not root: the cluster runs as this user, who made the folder
    existing = path
    while not existing.exists():
        existing = existing.parent
    r = subprocess.run([*prefix, "test", "-x", str(existing)], capture_output=True, timeout=30)
    return r.returncode == 0


def cluster_base(demo_dir: Path) -> Path:
    """Where the cluster lives: DEMO_DIR/pg, or a folder the `postgres` user can enter."""
    wanted = demo_dir / "pg"
    if (wanted.exists() and (wanted / "data").exists()) or _postgres_can_enter(wanted):
        return wanted
    digest = hashlib.sha256(str(demo_dir).encode()).hexdigest()[:12]
    other = Path("/var/tmp") / f"pgws-demo-{digest}"
    log.info(
        "the postgres user cannot enter %s (a parent folder is private, e.g. /root is mode "
        "700), so the cluster lives in %s; it is reused from there",
        demo_dir,
        other,
    )
    return other


def _saved_ports(base: Path) -> dict[str, int]:
    try:
        data = json.loads((base / "demo.json").read_text())
        return {k: int(v) for k, v in data.items() if k in DEFAULT_PORTS}
    except (OSError, ValueError):
        return {}


def choose_ports(base: Path) -> Ports:
    """Ports from the environment, else the ones this cluster used last time, else defaults.

    Raises:
        DemoError: a port asked for in the environment is not a number or is taken.
    """
    saved = _saved_ports(base)
    chosen: dict[str, int] = {}
    for name, env in PORT_ENV.items():
        text = os.environ.get(env)
        if text:
            if not text.isdigit() or not 0 < int(text) < 65536:
                raise DemoError(f"{env}={text!r} is not a port number")
            chosen[name] = int(text)
            continue
        port = saved.get(name, DEFAULT_PORTS[name])
        if name != "pg" and not _port_free(port):  # the cluster's port is checked when started
            new = free_port()
            log.info("port %d (%s) is taken; using %d (set %s to choose)", port, name, new, env)
            port = new
        chosen[name] = port
    return Ports(**chosen)


def save_ports(base: Path, ports: Ports) -> None:
    (base / "demo.json").write_text(json.dumps(asdict(ports), indent=1) + "\n")


def _cluster(base: Path, ports: Ports) -> Cluster:
    """Start the private cluster, creating it on first run, on the chosen port."""
    conf = base / "data" / "postgresql.conf"
    if conf.exists():
        found = re.findall(r"^port = (\d+)$", conf.read_text(), re.M)
        old = int(found[-1]) if found else 5432
        cluster = Cluster(base=base, port=old, extra_conf=PG_CONF)
        if cluster.is_running():
            log.info("reusing the running cluster in %s (port %d)", base, cluster.port)
            ports.pg = cluster.port
            return cluster
        if ports.pg != old or not _port_free(old):
            if not _port_free(ports.pg):
                ports.pg = _replacement("pg", ports.pg)
            with conf.open("a") as f:  # the last `port =` line wins
                f.write(f"port = {ports.pg}\n")
            cluster.port = ports.pg
        log.info("starting the existing cluster in %s (port %d)", base, cluster.port)
        cluster.start()
        return cluster
    if not _port_free(ports.pg):
        ports.pg = _replacement("pg", ports.pg)
    log.info("creating a private PostgreSQL + PostGIS cluster in %s", base)
    cluster = Cluster(base=base, port=ports.pg, extra_conf=PG_CONF)
    cluster.init()
    return cluster


def _replacement(name: str, port: int) -> int:
    if os.environ.get(PORT_ENV[name]):
        raise DemoError(
            f"port {port} ({PORT_ENV[name]}) is taken by another program: "
            f"choose another with {PORT_ENV[name]}=PORT"
        )
    new = free_port()
    log.info("port %d (%s) is taken; using %d (set %s to choose)", port, name, new, PORT_ENV[name])
    return new


def _database(cluster: Cluster) -> None:
    """The demo's role and database (idempotent)."""
    cluster.psql(
        f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{ROLE}') THEN "
        f"CREATE ROLE {ROLE} LOGIN PASSWORD '{PASSWORD}'; END IF; END $$",
        db="postgres",
    )
    if not cluster.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DB_NAME}'", db="postgres"):
        cluster.psql(f"CREATE DATABASE {DB_NAME} OWNER {ROLE}", db="postgres")
        cluster.psql("CREATE EXTENSION IF NOT EXISTS postgis", db=DB_NAME)


def _source() -> tuple[Path | None, bool]:
    """(file, sample): the list to load as the docstring above says."""
    env = os.environ.get("WHC_DATA")
    if env == "sample":
        return None, True
    if env:
        path = Path(env)
        if not path.is_file():
            raise DemoError(
                f"WHC_DATA={env}: no such file (unset it to use the feed or the invented sample)"
            )
        return path, False
    if env is None and SHARED_CSV.is_file():
        return SHARED_CSV, False
    return None, False


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="demo: %(message)s")
    # SIGTERM (e.g. `timeout`, a process manager) must tidy up like Ctrl-C: without this the
    # interpreter dies without running the finally below and leaves Postgres running.
    signal.signal(signal.SIGTERM, _interrupt)
    logging.getLogger("app").setLevel(logging.INFO)
    try:
        return _run()
    except KeyboardInterrupt:
        return 0
    except DemoError as exc:
        log.error("%s", exc)
        return 1
    except subprocess.CalledProcessError as exc:
        err = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else exc.stderr
        log.error(
            "%s failed (exit %s):\n%s",
            Path(str(exc.cmd[-1] if exc.cmd else "?")).name,
            exc.returncode,
            (err or "").strip(),
        )
        log.error(
            "the cluster could not be set up; fix the problem above (or remove the demo "
            "folder named above to start afresh) and run `make demo` again"
        )
        return 1
    except ReadyTimeout as exc:
        log.error("the proxy did not start: %s", exc)
        return 1


def _check_machine() -> None:
    if not (PG_BIN / "initdb").exists():
        raise DemoError(
            f"PostgreSQL 15 is not installed ({PG_BIN}/initdb is missing): run "
            "`make bootstrap` (as root) or set PG_BIN"
        )
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            raise DemoError(
                "there is no `postgres` user to run the cluster as: install the "
                "postgresql package (`make bootstrap`)"
            ) from None
        if shutil.which("runuser") is None:
            raise DemoError("`runuser` (util-linux) is needed to run Postgres as `postgres`")


def _run() -> int:
    _check_machine()
    demo_dir = Path(os.environ.get("DEMO_DIR", ROOT / "var" / "demo")).resolve()
    path, sample = _source()
    base = cluster_base(demo_dir)
    ports = choose_ports(base)
    cluster = _cluster(base, ports)
    save_ports(base, ports)
    proxy: subprocess.Popen[bytes] | None = None
    try:
        _database(cluster)
        for name in ("proxy", "sql"):
            if not _port_free(getattr(ports, name)):
                setattr(ports, name, _replacement(name, getattr(ports, name)))
                save_ports(base, ports)
        # One proxy process, loopback only, allowed to reach this cluster alone: the WebSocket
        # relay and the SQL-over-HTTP endpoint (the README's `driver.http` example uses it).
        proxy, _ = start_and_wait(
            [sys.executable, "-m", "proxy"],
            "wsproxy listening",
            echo="proxy: ",  # its refusals and errors belong in the demo's output
            env={
                "LISTEN_PORT": f"127.0.0.1:{ports.proxy}",
                "SQL_HTTP_LISTEN": f"127.0.0.1:{ports.sql}",
                "ALLOW_ADDR_REGEX": rf"127\.0\.0\.1:{cluster.port}",
                "PYTHONPATH": str(ROOT),
            },
        )
        log.info(
            "proxy listening on 127.0.0.1:%d (WebSocket) and 127.0.0.1:%d (POST /sql)",
            ports.proxy,
            ports.sql,
        )
        return _serve(cluster, ports, path, sample)
    finally:
        log.info("stopping the proxy and the cluster")
        if proxy is not None:
            stop(proxy)
        cluster.stop()


def dsn(port: int, role: str = ROLE, password: str = PASSWORD) -> str:
    return f"postgresql://{role}:{password}@127.0.0.1:{port}/{DB_NAME}"


def _serve(cluster: Cluster, ports: Ports, path: Path | None, sample: bool) -> int:
    from app.load import load
    from app.settings import Settings
    from app.sources import SourceError

    settings = Settings(
        database_url=dsn(cluster.port),
        ws_proxy=f"127.0.0.1:{ports.proxy}/v2",
        ws_secure=False,
        db_mode="pool",
        whc_data=path,
        playground_database_url=dsn(cluster.port, "playground", "playground"),
        host="127.0.0.1",
        port=ports.app,
    )
    have, had_sample = 0, True
    if cluster.psql("SELECT to_regclass('whc_sites') IS NOT NULL", db=DB_NAME) == "t":
        have = int(cluster.psql("SELECT count(*) FROM whc_sites", db=DB_NAME))
    if cluster.psql("SELECT to_regclass('whc_dataset') IS NOT NULL", db=DB_NAME) == "t":
        had_sample = cluster.psql("SELECT sample FROM whc_dataset", db=DB_NAME) != "f"
    if have > 0 and os.environ.get("DEMO_RELOAD") != "1":
        what = "invented sample" if had_sample else "list"
        log.info(
            "reusing the %s sites of the %s already loaded (DEMO_RELOAD=1 loads again)", have, what
        )
    else:
        url = os.environ.get("WHC_FEED_URL") or None
        log.info(
            "loading the list from %s",
            "the invented sample" if sample else path or url or "the UNESCO feed",
        )
        try:
            result = asyncio.run(
                load(
                    settings,
                    path,
                    *([url] if url else []),
                    sample=sample,
                    fallback_sample=True,
                    max_shrink=None if had_sample else 0.1,
                )
            )
        except SourceError as exc:
            raise DemoError(str(exc)) from exc
        log.info("loaded %d sites, rejected %d rows", result.loaded, len(result.rejected))
        had_sample = result.sample
    if had_sample:
        log.warning(
            "SAMPLE DATA: the sites are invented (app/sample.py), not UNESCO's list; the page "
            "shows a banner. For the real list: WHC_DATA=FILE DEMO_RELOAD=1 make demo, with a "
            "saved copy of https://whc.unesco.org/en/list/xml/ or the CSV export"
        )
    # The /playground page's read-only role (visitors' browsers connect as it, through the proxy).
    cluster.psql((ROOT / "sql" / "playground_role.sql").read_text(), db=DB_NAME)
    from app.main import create_app

    config = uvicorn.Config(create_app(settings), log_level="warning", **uvicorn_options(settings))
    _AnnouncingServer(config, ports).run()
    return 0


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """`python -m app.serve`'s options (header bound, connection limit, keep-alive, backlog),
    so the demo faces a browser with the same limits as the image; one process, since the
    demo serves an app object it built, not an import string."""
    from app.serve import uvicorn_options as serve_options

    return {**serve_options(settings), "workers": 1}


def usage(ports: Ports) -> str:
    """What the demo prints once it serves: addresses, a driver snippet and a psql command."""
    db = dsn(ports.pg)
    psql = shutil.which("psql") or str(PG_BIN / "psql")
    return f"""ready; everything listens on loopback only:
  page       http://127.0.0.1:{ports.app}/
  API docs   http://127.0.0.1:{ports.app}/docs
  database   {db}
  proxy      ws://127.0.0.1:{ports.proxy}/v2  (ws://, not wss://: use_secure_websocket=False)
  sql        http://127.0.0.1:{ports.sql}/sql  (SQL over HTTP: driver.http, neon())
demo: the driver through the proxy (paste into .venv/bin/python):
import asyncio
import driver

async def main() -> None:
    conn = await driver.connect(
        "{db}",
        ws_proxy="127.0.0.1:{ports.proxy}/v2",
        use_secure_websocket=False,
    )
    async with conn:
        print(await conn.fetch("SELECT id_no, name_en FROM whc_sites ORDER BY id_no LIMIT 3"))

asyncio.run(main())

demo: psql, straight to Postgres:
{psql} '{db}'
"""


class _AnnouncingServer(uvicorn.Server):
    """Prints how to use the demo only once the socket accepts connections."""

    def __init__(self, config: uvicorn.Config, ports: Ports) -> None:
        super().__init__(config)
        self.ports = ports

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            log.info("%s", usage(self.ports))
            log.info(
                "open http://127.0.0.1:%d/  (API docs at /docs; Ctrl-C stops everything)",
                self.config.port,
            )


if __name__ == "__main__":
    raise SystemExit(main())
