"""The repo's nginx front (deploy/nginx/) started for real by the tests, with their upstreams.

Only the three small includes change (listen address, app servers, WebSocket proxies); the main
file, with every limit, is deploy/nginx/nginx.conf as committed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONF_DIR = ROOT / "deploy" / "nginx"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


@dataclass(frozen=True)
class Front:
    host: str
    port: int
    master_pid: int
    prefix: Path

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def worker_pids(self) -> list[int]:
        kids = Path(f"/proc/{self.master_pid}/task/{self.master_pid}/children").read_text()
        return [int(p) for p in kids.split()]

    def rss_kib(self) -> int:
        """Resident memory of all workers together, in KiB."""
        total = 0
        for pid in self.worker_pids():
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        return total


def server_params(include: Path) -> str:
    """The parameters of the `server` line in one of the repo's upstream includes
    (`max_fails=1 max_conns=64 ...`), so that the tests' upstreams carry the committed limits."""
    for line in include.read_text().splitlines():
        words = line.split("#", 1)[0].strip().removesuffix(";").split()
        if words[:1] == ["server"]:
            return " ".join(words[2:])
    raise AssertionError(f"no server line in {include}")


def write_conf(
    dest: Path, listen: str, app_servers: Sequence[str], ws_servers: Sequence[str]
) -> Path:
    """Copy the repo's config to `dest` with these upstreams; returns the main file."""
    dest.mkdir(parents=True, exist_ok=True)
    for f in CONF_DIR.iterdir():
        shutil.copy(f, dest / f.name)
    (dest / "listen.conf").write_text(f"listen {listen};\n")
    app, ws = (
        server_params(CONF_DIR / "app-servers.conf"),
        server_params(CONF_DIR / "wsproxy-servers.conf"),
    )
    (dest / "app-servers.conf").write_text("".join(f"server {s} {app};\n" for s in app_servers))
    (dest / "wsproxy-servers.conf").write_text("".join(f"server {s} {ws};\n" for s in ws_servers))
    return dest / "nginx.conf"


def nginx_argv(conf: Path) -> list[str]:
    prefix = conf.parent
    return [
        NGINX,
        "-p",
        str(prefix),
        "-c",
        str(conf),
        "-e",
        "stderr",
        "-g",
        f"daemon off; pid {prefix / 'nginx.pid'}; error_log stderr notice;",
    ]


@contextmanager
def running_front(
    host: str, port: int, app_servers: Sequence[str], ws_servers: Sequence[str] = ("127.0.0.1:9",)
) -> Iterator[Front]:
    """nginx in the foreground with the repo's config; ready when it logs its workers."""
    from tools.procs import start_and_wait, stop

    prefix = Path(tempfile.mkdtemp(prefix="pgws-front-"))
    try:
        conf = write_conf(prefix, f"{host}:{port}", app_servers, ws_servers)
        check = subprocess.run(
            [*nginx_argv(conf), "-t"], capture_output=True, text=True, timeout=30
        )
        assert check.returncode == 0, check.stderr
        proc, _ = start_and_wait(nginx_argv(conf), "start worker process", timeout=30)
        try:
            yield Front(host, port, proc.pid, prefix)
        finally:
            stop(proc)
    finally:
        shutil.rmtree(prefix, ignore_errors=True)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True
