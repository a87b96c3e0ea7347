"""Debian's pgbouncer in transaction pooling mode in front of the private cluster.

Transaction pooling is what serverless deployments put between many short-lived clients and
Postgres, and it breaks drivers that rely on session state (named prepared statements), so the
driver's query suite runs through it too. Clients authenticate to pgbouncer as they would to
the cluster (trust_user by trust, the others by SCRAM); pgbouncer reaches the cluster with the
same passwords. Client TLS is offered with the cluster's certificate, so TLS can be tested here.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlencode

from tools.pgcluster import DBNAME, ROLES, Cluster, free_port
from tools.procs import start_and_wait, stop

PGBOUNCER = os.environ.get("PGBOUNCER", "/usr/sbin/pgbouncer")


@dataclass
class Bouncer:
    """A running pgbouncer; ``dsn(role)`` gives a URL through it."""

    base: Path
    port: int
    proc: subprocess.Popen[bytes]
    host: str = "127.0.0.1"

    def dsn(self, role: str = "scram_user", **params: str) -> str:
        pw = ROLES[role][0]
        auth = quote(role, safe="") + (":" + quote(pw, safe="") if pw is not None else "")
        q = ("?" + urlencode(params)) if params else ""
        return f"postgresql://{auth}@{self.host}:{self.port}/{DBNAME}{q}"

    def stop(self) -> None:
        stop(self.proc)
        shutil.rmtree(self.base, ignore_errors=True)


def _quote(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def start_pgbouncer(
    cluster: Cluster, *, pool_mode: str = "transaction", pool_size: int = 5
) -> Bouncer:
    """Start pgbouncer for ``cluster`` on a free loopback port; the caller must ``stop()`` it.

    Ready when it logs "process up" (no sleeps). As root, pgbouncer drops to the ``postgres``
    user itself (its ``user`` setting), so the process we hold is pgbouncer, not a wrapper.
    """
    base = Path(tempfile.mkdtemp(prefix="pgws-bouncer-"))
    port = free_port()
    users = "\n".join(f"{_quote(role)} {_quote(pw or '')}" for role, (pw, _, _) in ROLES.items())
    (base / "userlist.txt").write_text(users + "\n")
    hba = ["host all trust_user 127.0.0.1/32 trust", "host all all 127.0.0.1/32 scram-sha-256"]
    (base / "hba.conf").write_text("\n".join(hba) + "\n")
    certs = cluster.certs
    tls = ""
    if certs is not None:
        tls = (
            f"client_tls_sslmode = allow\nclient_tls_cert_file = {certs.server_cert}\n"
            f"client_tls_key_file = {certs.server_key}\nclient_tls_ca_file = {certs.ca_cert}\n"
        )
    as_root = os.geteuid() == 0
    (base / "pgbouncer.ini").write_text(
        f"[databases]\n{DBNAME} = host={cluster.host} port={cluster.port} dbname={DBNAME}\n\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = hba\nauth_hba_file = {base / 'hba.conf'}\n"
        f"auth_file = {base / 'userlist.txt'}\n"
        f"pool_mode = {pool_mode}\ndefault_pool_size = {pool_size}\nmax_client_conn = 200\n"
        # what JDBC-style clients send; our driver sends only parameters PgBouncer tracks
        "ignore_startup_parameters = extra_float_digits\n"
        "server_tls_sslmode = prefer\n"
        f"{tls}" + ("user = postgres\n" if as_root else "")
    )
    if as_root:
        pw = pwd.getpwnam("postgres")
        for p in (base, *base.iterdir()):
            os.chown(p, pw.pw_uid, pw.pw_gid)
    try:
        proc, _ = start_and_wait([PGBOUNCER, str(base / "pgbouncer.ini")], "process up", timeout=30)
    except BaseException:
        shutil.rmtree(base, ignore_errors=True)
        raise
    return Bouncer(base, port, proc)
