"""A private PostgreSQL 15 + PostGIS cluster for the tests, the demo and the benchmarks.

The cluster lives in one directory (a temp dir for tests, a git-ignored folder for the demo),
listens on its own port on loopback only, has TLS on with a throw-away CA, and has one role per
authentication method, so every auth path of the driver meets a real server.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
DBNAME = "testdb"

# role -> (password, pg_hba method, password_encryption used when storing the password)
ROLES: dict[str, tuple[str | None, str, str]] = {
    "trust_user": (None, "trust", "scram-sha-256"),
    "clear_user": ("clear pass", "password", "scram-sha-256"),
    "md5_user": ("md5 p@ss", "md5", "md5"),
    "scram_user": ("scr@m:pass/ü", "scram-sha-256", "scram-sha-256"),
    # only over TLS: proves hostssl lines and lets TLS tests force encryption
    "tls_user": ("tls pass", "scram-sha-256", "scram-sha-256"),
}
HOSTSSL_ONLY = {"tls_user"}


def free_port(host: str = "127.0.0.1") -> int:
    """Ask the kernel for a port nobody listens on (racy in theory, fine on a test machine)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@contextmanager
def refused_port(host: str = "127.0.0.1") -> Iterator[int]:
    """A port whose connects are refused for as long as the block runs.

    A port from free_port() is free only at the moment it is picked: over a long suite another
    server may listen on it, or a client's own ephemeral port may land on it (a TCP
    self-connect, which succeeds). A socket bound and never listening keeps the port taken,
    so nothing else can have it, and the kernel answers every connect with a reset.
    """
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        yield int(s.getsockname()[1])


@dataclass
class CertBundle:
    """A throw-away CA and a server certificate signed by it, as PEM files."""

    dir: Path
    ca_cert: Path = field(init=False)
    server_cert: Path = field(init=False)
    server_key: Path = field(init=False)
    client_cert: Path = field(init=False)
    client_key: Path = field(init=False)

    def __post_init__(self) -> None:
        self.ca_cert = self.dir / "ca.crt"
        self.server_cert = self.dir / "server.crt"
        self.server_key = self.dir / "server.key"
        self.client_cert = self.dir / "client.crt"
        self.client_key = self.dir / "client.key"

    @property
    def ca_pem(self) -> str:
        return self.ca_cert.read_text()


def make_certs(directory: Path, hostnames: tuple[str, ...] = ("localhost",)) -> CertBundle:
    """Generate a CA, a server certificate (localhost, 127.0.0.1, ::1) and a client cert.

    Generated per run so the suite never breaks on an expired checked-in certificate.
    The server key is P-256 so TLS 1.3 key shares and signatures stay cheap.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    directory.mkdir(parents=True, exist_ok=True)
    bundle = CertBundle(directory)
    now = dt.datetime.now(dt.UTC)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("pgws test CA"))
        .issuer_name(name("pgws test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )

    def leaf(
        cn: str, sans: list[x509.GeneralName], usage: x509.ObjectIdentifier
    ) -> tuple[bytes, bytes]:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(name(cn))
            .issuer_name(ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
            )
        )
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())
        key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return cert.public_bytes(serialization.Encoding.PEM), key_pem

    sans: list[x509.GeneralName] = [x509.DNSName(h) for h in hostnames]
    sans += [
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
    ]
    srv_cert, srv_key = leaf(hostnames[0], sans, ExtendedKeyUsageOID.SERVER_AUTH)
    cli_cert, cli_key = leaf("cert_user", [], ExtendedKeyUsageOID.CLIENT_AUTH)
    bundle.ca_cert.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    bundle.server_cert.write_bytes(srv_cert)
    bundle.server_key.write_bytes(srv_key)
    bundle.client_cert.write_bytes(cli_cert)
    bundle.client_key.write_bytes(cli_key)
    for key_file in (bundle.server_key, bundle.client_key):
        key_file.chmod(0o600)
    return bundle


def _pg_user() -> tuple[list[str], int | None, int | None]:
    """Postgres refuses to run as root: as root, run its programs as the `postgres` user."""
    if os.geteuid() != 0:
        return [], None, None
    pw = pwd.getpwnam("postgres")
    return ["runuser", "-u", "postgres", "--"], pw.pw_uid, pw.pw_gid


def _chown_tree(path: Path, uid: int | None, gid: int | None) -> None:
    if uid is None or gid is None:
        return
    for root, dirs, files in os.walk(path):
        os.chown(root, uid, gid)
        for n in dirs + files:
            os.chown(os.path.join(root, n), uid, gid)


@dataclass
class Cluster:
    """A running private cluster; `dsn(role)` gives a URL for each test role."""

    base: Path
    port: int
    host: str = "127.0.0.1"
    certs: CertBundle | None = None
    extra_conf: dict[str, str] = field(default_factory=dict)

    @property
    def datadir(self) -> Path:
        return self.base / "data"

    @property
    def sockdir(self) -> Path:
        return self.base / "sock"

    def password(self, role: str) -> str | None:
        return ROLES[role][0]

    def dsn(self, role: str = "scram_user", *, host: str | None = None, **params: str) -> str:
        from urllib.parse import quote, urlencode

        pw = ROLES[role][0] if role in ROLES else None  # cert_user: no password
        auth = quote(role, safe="") + (":" + quote(pw, safe="") if pw is not None else "")
        h = host or self.host
        if ":" in h and not h.startswith("["):
            h = f"[{h}]"
        q = ("?" + urlencode(params)) if params else ""
        return f"postgresql://{auth}@{h}:{self.port}/{DBNAME}{q}"

    def psql(self, sql: str, db: str = DBNAME) -> str:
        """Run SQL as the superuser over the Unix socket (setup and inspection only)."""
        prefix, _, _ = _pg_user()
        out = subprocess.run(
            [
                *prefix,
                str(PG_BIN / "psql"),
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                str(self.sockdir),
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-d",
                db,
                "-c",
                sql,
            ],
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        )
        return out.stdout.strip()

    # -- lifecycle ---------------------------------------------------------------------

    def init(self) -> None:
        """initdb, certificates, configuration, roles, database and PostGIS."""
        prefix, uid, gid = _pg_user()
        self.base.mkdir(parents=True, exist_ok=True)
        self.sockdir.mkdir(exist_ok=True)
        self.certs = make_certs(self.base / "certs")
        if uid is not None:
            os.chown(self.base, uid, gid or -1)
        _chown_tree(self.base, uid, gid)
        subprocess.run(
            [
                *prefix,
                str(PG_BIN / "initdb"),
                "-D",
                str(self.datadir),
                "-U",
                "postgres",
                "--auth-local=trust",
                "--auth-host=reject",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
        conf = {
            "listen_addresses": "'127.0.0.1,::1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.sockdir}'",
            "ssl": "on",
            "ssl_cert_file": f"'{self.certs.server_cert}'",
            "ssl_key_file": f"'{self.certs.server_key}'",
            "ssl_ca_file": f"'{self.certs.ca_cert}'",
            "max_connections": "200",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "shared_buffers": "128MB",
            "log_min_messages": "warning",
            "logging_collector": "off",
            **self.extra_conf,
        }
        with open(self.datadir / "postgresql.conf", "a") as f:
            f.write("\n# pgws private cluster\n")
            for k, v in conf.items():
                f.write(f"{k} = {v}\n")
        hba = ["local all all trust"]
        for role, (_, method, _) in ROLES.items():
            kind = "hostssl" if role in HOSTSSL_ONLY else "host"
            for net in ("127.0.0.1/32", "::1/128"):
                hba.append(f"{kind} all {role} {net} {method}")
        for net in ("127.0.0.1/32", "::1/128"):
            for role in sorted(HOSTSSL_ONLY | {"cert_user"}):
                hba.append(f"hostnossl all {role} {net} reject")
            hba.append(f"hostssl all cert_user {net} cert")
            hba.append(f"host all all {net} scram-sha-256")
        (self.datadir / "pg_hba.conf").write_text("\n".join(hba) + "\n")
        _chown_tree(self.datadir, uid, gid)
        self.start()
        stmts = []
        for role, (pw, _, enc) in ROLES.items():
            stmts.append(f"SET password_encryption = '{enc}'")
            pw_sql = "PASSWORD '" + pw.replace("'", "''") + "'" if pw is not None else ""
            stmts.append(f'CREATE ROLE "{role}" LOGIN {pw_sql}')
        stmts.append("CREATE ROLE cert_user LOGIN")
        self.psql("; ".join(stmts), db="postgres")
        self.psql(f"CREATE DATABASE {DBNAME}", db="postgres")
        self.psql(
            "CREATE EXTENSION IF NOT EXISTS postgis; GRANT ALL ON SCHEMA public TO PUBLIC;"
            f"GRANT ALL ON DATABASE {DBNAME} TO PUBLIC"
        )

    def start(
        self,
        options: str | None = None,
        wrap: Callable[[list[str]], list[str]] | None = None,
    ) -> None:
        """``pg_ctl start``; ``options`` are the server's (``pg_ctl -o``), and ``wrap`` turns
        the command into the one to run (e.g. inside a network namespace)."""
        prefix, uid, gid = _pg_user()
        log = self.base / "postgres.log"
        if not log.exists():
            log.touch()
            if uid is not None and gid is not None:
                os.chown(log, uid, gid)
        argv = [*prefix, str(PG_BIN / "pg_ctl"), "-D", str(self.datadir), "-l", str(log)]
        if options is not None:
            argv += ["-o", options]
        argv += ["-w", "-t", "60", "start"]
        subprocess.run(
            wrap(argv) if wrap is not None else argv,
            check=True,
            capture_output=True,
            timeout=90,
        )

    def stop(self, mode: str = "fast") -> None:
        prefix, _, _ = _pg_user()
        subprocess.run(
            [
                *prefix,
                str(PG_BIN / "pg_ctl"),
                "-D",
                str(self.datadir),
                "-m",
                mode,
                "-w",
                "-t",
                "30",
                "stop",
            ],
            capture_output=True,
            timeout=60,
        )

    def is_running(self) -> bool:
        prefix, _, _ = _pg_user()
        r = subprocess.run(
            [*prefix, str(PG_BIN / "pg_ctl"), "-D", str(self.datadir), "status"],
            capture_output=True,
            timeout=30,
        )
        return r.returncode == 0


def start_temp_cluster(**extra_conf: str) -> Cluster:
    """A fresh cluster in a new temp dir; the caller must `stop()` and remove `base`."""
    base = Path(tempfile.mkdtemp(prefix="pgws-pg-"))
    cluster = Cluster(base=base, port=free_port(), extra_conf=extra_conf)
    try:
        cluster.init()
    except BaseException:
        cluster.stop("immediate")
        shutil.rmtree(base, ignore_errors=True)
        raise
    return cluster


def destroy(cluster: Cluster) -> None:
    cluster.stop("fast")
    shutil.rmtree(cluster.base, ignore_errors=True)


def start_replica(primary: Cluster) -> Cluster:
    """A streaming hot standby of ``primary`` (pg_basebackup over its Unix socket), on a
    free loopback port; the caller must ``destroy()`` it. Multi-host and
    target_session_attrs tests need a server that really is in recovery."""
    prefix, uid, gid = _pg_user()
    with open(primary.datadir / "pg_hba.conf", "a") as f:
        f.write("local replication all trust\n")
    primary.psql("SELECT pg_reload_conf()")
    base = Path(tempfile.mkdtemp(prefix="pgws-standby-"))
    replica = Cluster(base=base, port=free_port(), certs=primary.certs)
    replica.sockdir.mkdir()
    _chown_tree(base, uid, gid)
    try:
        subprocess.run(
            [*prefix, str(PG_BIN / "pg_basebackup"), "-h", str(primary.sockdir), "-p",
             str(primary.port), "-U", "postgres", "-D", str(replica.datadir), "-R",
             "-X", "stream", "-c", "fast", "--no-sync"],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        with open(replica.datadir / "postgresql.conf", "a") as f:
            f.write(f"port = {replica.port}\nunix_socket_directories = '{replica.sockdir}'\n")
        replica.start()
    except BaseException:
        replica.stop("immediate")
        shutil.rmtree(base, ignore_errors=True)
        raise
    return replica
