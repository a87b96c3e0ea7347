"""Scale past one machine, on this machine: every part of the production shape in its own
network namespace (private 10.x addresses, veths into one bridge, names unique per run), load
through the front, and one proxy and one app replica stopped mid-load.

    client -> front (nginx, deploy/nginx/nginx.conf) -> app1, app2 (shared Redis cache)
    app -> front /v2 -> proxy1, proxy2 -> PgBouncer (transaction mode) -> Postgres primary
                                                       Postgres replica <- streaming

Requests may fail only while in flight when a part stops, and then as 503 with Retry-After.
Then reads while the primary is down: a third app whose DATABASE_URL lists the primary and
the replica (`target_session_attrs=any`, the driver's multi-host connect), through its own
proxy, keeps answering from the replica once the primary is stopped.
"""

from __future__ import annotations

import json
import os
import re
import selectors
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.deploy.conftest import SITES_SQL
from tests.deploy.front import nginx_argv, write_conf
from tests.deploy.netns import Network
from tools.pgcluster import PG_BIN, ROLES, Cluster, _chown_tree, _pg_user, free_port
from tools.procs import start_and_wait, stop

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root"),
]
REPLICATOR_PW = "repl pass"
TOTAL = 1500
POOL_SIZE = 4


class Lines:
    """Reads a process's stdout line by line, waiting on a condition with a deadline."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        self.proc, self.pipe = proc, proc.stdout
        os.set_blocking(self.pipe.fileno(), False)
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.pipe, selectors.EVENT_READ)
        self.buf = b""
        self.lines: list[str] = []

    def wait_for(self, pred: object, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            for line in self.lines:
                if pred(line):  # type: ignore[operator]
                    return line
            left = deadline - time.monotonic()
            assert left > 0, f"no matching line in {timeout} s: {self.lines[-5:]}"
            if self.sel.select(left):
                chunk = self.pipe.read() or b""
                if not chunk and self.proc.poll() is not None:
                    raise AssertionError(f"client exited {self.proc.returncode}: {self.lines[-5:]}")
                self.buf += chunk
                *done, self.buf = self.buf.split(b"\n")
                self.lines += [d.decode() for d in done]


def _progress_at_least(n: int) -> object:
    return lambda line: line.startswith("progress ") and int(line.split()[1]) >= n


def test_scale_out_survives_a_proxy_and_a_replica_stopping() -> None:
    with ExitStack() as stack:
        net = Network()
        stack.callback(net.teardown)
        work = Path(tempfile.mkdtemp(prefix="pgws-scale-"))
        stack.callback(shutil.rmtree, work, True)
        work.chmod(0o755)  # the postgres user must enter it
        procs: list[subprocess.Popen[bytes]] = []

        def stop_all() -> None:
            for p in reversed(procs):
                stop(p)

        stack.callback(stop_all)
        addr = {
            name: net.add_host(name)
            for name in (
                "db1",
                "db2",
                "bouncer",
                "proxy1",
                "proxy2",
                "redis",
                "app1",
                "app2",
                "front",
                "client",
                "proxy3",
                "app3",
            )
        }
        subnet = f"{net.prefix}.0/24"

        # --- Postgres primary, then a streaming replica made with pg_basebackup -----------------
        port = free_port()
        primary = Cluster(base=work / "db1", port=port)
        primary.init()  # on loopback first: roles, database, PostGIS
        primary.psql((ROOT / "sql" / "schema.sql").read_text())
        primary.psql(SITES_SQL)
        primary.psql("GRANT SELECT ON whc_sites TO scram_user")
        primary.psql(
            f"CREATE ROLE replicator REPLICATION LOGIN PASSWORD '{REPLICATOR_PW}'", db="postgres"
        )
        primary.stop()
        with open(primary.datadir / "postgresql.conf", "a") as f:
            f.write(f"listen_addresses = '{addr['db1']}'\n")
        with open(primary.datadir / "pg_hba.conf", "a") as f:
            f.write(
                f"host all all {subnet} scram-sha-256\n"
                f"host replication replicator {subnet} scram-sha-256\n"
            )
        primary.start(wrap=lambda argv: net.exec_argv("db1", argv))
        stack.callback(primary.stop, "immediate")

        replica = Cluster(base=work / "db2", port=port)
        replica.base.mkdir()
        replica.sockdir.mkdir()
        _chown_tree(replica.base, *_pg_user()[1:])
        subprocess.run(
            net.exec_argv(
                "db2",
                [
                    *_pg_user()[0],
                    "env",
                    f"PGPASSWORD={REPLICATOR_PW}",
                    str(PG_BIN / "pg_basebackup"),
                    "-h",
                    addr["db1"],
                    "-p",
                    str(port),
                    "-U",
                    "replicator",
                    "-D",
                    str(replica.datadir),
                    "-R",
                    "-X",
                    "stream",
                    "-c",
                    "fast",
                ],
            ),
            check=True,
            capture_output=True,
            timeout=120,
        )
        opts = f"-c listen_addresses={addr['db2']} -c unix_socket_directories={replica.sockdir}"
        replica.start(opts, wrap=lambda argv: net.exec_argv("db2", argv))
        stack.callback(replica.stop, "immediate")
        assert replica.psql("SELECT pg_is_in_recovery()") == "t"

        # --- PgBouncer, Redis, two proxies ------------------------------------------------------
        bdir = work / "bouncer"
        bdir.mkdir()
        (bdir / "userlist.txt").write_text(
            '"scram_user" "' + (ROLES["scram_user"][0] or "") + '"\n'
        )
        (bdir / "pgbouncer.ini").write_text(
            f"[databases]\ntestdb = host={addr['db1']} port={port} dbname=testdb\n\n"
            f"[pgbouncer]\nlisten_addr = {addr['bouncer']}\nlisten_port = 6432\n"
            "unix_socket_dir =\nauth_type = scram-sha-256\n"
            f"auth_file = {bdir / 'userlist.txt'}\npool_mode = transaction\n"
            "default_pool_size = 10\nmax_client_conn = 200\n"
            "ignore_startup_parameters = extra_float_digits\nuser = postgres\n"
        )
        _chown_tree(bdir, *_pg_user()[1:])
        p, _ = start_and_wait(
            net.exec_argv("bouncer", ["/usr/sbin/pgbouncer", str(bdir / "pgbouncer.ini")]),
            "process up",
            timeout=30,
        )
        procs.append(p)
        p, _ = start_and_wait(
            net.exec_argv(
                "redis",
                [
                    "redis-server",
                    "--bind",
                    addr["redis"],
                    "--port",
                    "6379",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    # alone in its namespace, as in compose
                    "--protected-mode",
                    "no",
                ],
            ),
            "Ready to accept connections",
            timeout=30,
            stream="stdout",
        )
        procs.append(p)
        proxies = {}
        for name in ("proxy1", "proxy2"):
            env = {
                "LISTEN_PORT": f"{addr[name]}:9876",
                "ALLOW_ADDR_REGEX": re.escape(addr["bouncer"]) + ":6432",
            }
            proxies[name], _ = start_and_wait(
                net.exec_argv(name, [sys.executable, "-m", "proxy"]),
                "listening",
                env=env,
                timeout=30,
            )
            procs.append(proxies[name])

        # --- the front and two app replicas -----------------------------------------------------
        conf = write_conf(
            work / "front",
            f"{addr['front']}:8080",
            [f"{addr['app1']}:8000", f"{addr['app2']}:8000"],
            [f"{addr['proxy1']}:9876", f"{addr['proxy2']}:9876"],
        )
        p, _ = start_and_wait(
            net.exec_argv("front", nginx_argv(conf)), "start worker process", timeout=30
        )
        procs.append(p)
        apps = {}
        for name in ("app1", "app2"):
            env = {
                "PYTHONPATH": str(ROOT),
                "HOST": addr[name],
                "PORT": "8000",
                "WORKERS": "1",
                "DATABASE_URL": f"postgresql://scram_user:{_quoted('scram_user')}"
                f"@{addr['bouncer']}:6432/testdb",
                "WS_PROXY": f"{addr['front']}:8080/v2",
                "WS_SECURE": "false",
                "STATEMENT_CACHE_SIZE": "0",
                "POOL_SIZE": str(POOL_SIZE),
                "POOL_MIN_SIZE": "1",
                "DB_TIMEOUT_S": "5",
                "CACHE_URL": f"redis://{addr['redis']}:6379/0",
                "TRUSTED_PROXIES": f"{addr['front']}/32",
            }
            apps[name], _ = start_and_wait(
                net.exec_argv(name, [sys.executable, "-m", "app.serve"]),
                "Uvicorn running on",
                env=env,
                timeout=60,
            )
            procs.append(apps[name])

        # --- load through the front, with a proxy and a replica stopped on the way --------------
        client = subprocess.Popen(
            net.exec_argv(
                "client",
                [
                    sys.executable,
                    "-m",
                    "tests.deploy.loadclient",
                    f"http://{addr['front']}:8080/api/nearest",
                    str(TOTAL),
                    "16",
                    "100",
                ],
            ),
            stdout=subprocess.PIPE,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        procs.append(client)
        out = Lines(client)
        started = time.monotonic()
        out.wait_for(_progress_at_least(300), 60)
        stop(proxies["proxy1"])
        out.wait_for(_progress_at_least(700), 60)
        stop(apps["app1"])
        line = out.wait_for(lambda ln: ln.startswith("{"), 90)
        took = time.monotonic() - started
        counts = json.loads(line)
        print("\n".join(ln for ln in out.lines if ln.startswith(("shed", "unexpected", "error"))))

        assert counts["ok"] + counts["shed"] == TOTAL, (counts, out.lines[-10:])
        assert counts["other"] == 0 and counts["error"] == 0 and counts["bare_503"] == 0, counts
        # only requests in flight on the stopped parts may fail: at most one per pooled
        # connection that went through proxy1, per replica
        assert counts["shed"] <= 2 * POOL_SIZE, counts
        assert counts["ok"] >= TOTAL - 2 * POOL_SIZE
        assert took < 60, took
        # the cache is shared: both replicas wrote cells into the one Redis
        keys = subprocess.run(
            net.exec_argv("redis", ["redis-cli", "-h", addr["redis"], "dbsize"]),
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        assert int(keys) > 0
        # the replica streams from the primary and has every row
        assert primary.psql("SELECT state FROM pg_stat_replication") == "streaming"
        n = primary.psql("SELECT count(*) FROM whc_sites")
        deadline = time.monotonic() + 10
        while replica.psql("SELECT count(*) FROM whc_sites") != n:
            assert time.monotonic() < deadline, "replica did not catch up"
        print(f"scale-out: {counts} in {took:.1f} s")

        # --- reads while the primary is down: an app configured with both servers -------------
        env = {
            "LISTEN_PORT": f"{addr['proxy3']}:9876",
            "ALLOW_ADDR_REGEX": f"({re.escape(addr['db1'])}|{re.escape(addr['db2'])}):{port}",
        }
        p, _ = start_and_wait(
            net.exec_argv("proxy3", [sys.executable, "-m", "proxy"]),
            "listening",
            env=env,
            timeout=30,
        )
        procs.append(p)
        env = {
            "PYTHONPATH": str(ROOT),
            "HOST": addr["app3"],
            "PORT": "8000",
            "WORKERS": "1",
            "DATABASE_URL": f"postgresql://scram_user:{_quoted('scram_user')}@{addr['db1']}:"
            f"{port},{addr['db2']}:{port}/testdb?target_session_attrs=any",
            "WS_PROXY": f"{addr['proxy3']}:9876/v2",
            "WS_SECURE": "false",
            "POOL_SIZE": str(POOL_SIZE),
            "POOL_MIN_SIZE": "1",
            "DB_TIMEOUT_S": "5",
            "CACHE_TTL_S": "0.001",  # every request reads the database
        }
        p, _ = start_and_wait(
            net.exec_argv("app3", [sys.executable, "-m", "app.serve"]),
            "Uvicorn running on",
            env=env,
            timeout=60,
        )
        procs.append(p)
        url3 = f"http://{addr['app3']}:8000/api/nearest"

        def load(total: int) -> dict[str, int]:
            run = subprocess.run(
                net.exec_argv(
                    "client",
                    [sys.executable, "-m", "tests.deploy.loadclient", url3, str(total), "4", "50"],
                ),
                capture_output=True,
                text=True,
                cwd=ROOT,
                timeout=60,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            )
            return dict(json.loads(run.stdout.splitlines()[-1]))

        assert load(40)["ok"] == 40  # the primary answers (first in the list)
        assert (
            primary.psql(
                "SELECT count(*) FROM pg_stat_activity WHERE usename = "
                "'scram_user' AND client_addr = '" + addr["proxy3"] + "'"
            )
            != "0"
        )
        primary.stop("immediate")
        counts = load(100)
        # requests on pooled connections to the stopped primary may fail once each
        assert counts["ok"] + counts["shed"] == 100 and counts["shed"] <= POOL_SIZE, counts
        assert counts["other"] == counts["error"] == counts["bare_503"] == 0, counts
        assert load(40)["ok"] == 40  # and from then on every read is served
        print(f"primary down, reads from the replica: {counts}")
        assert (
            replica.psql(
                "SELECT count(*) FROM pg_stat_activity WHERE usename = "
                "'scram_user' AND client_addr = '" + addr["proxy3"] + "'"
            )
            != "0"
        )


def _quoted(role: str) -> str:
    from urllib.parse import quote

    return quote(ROLES[role][0] or "", safe="")


@pytest.fixture(autouse=True)
def _no_leftover_namespaces() -> Iterator[None]:
    before = set(
        subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()
    )
    yield
    after = set(
        subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()
    )
    leftover = {n for n in after - before if n.startswith("pgws-")}
    assert not leftover, leftover
