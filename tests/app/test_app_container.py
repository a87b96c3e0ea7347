"""The container files, checked without a Docker engine: hadolint on the Dockerfile, the
image's own HEALTHCHECK and CMD run for real against this checkout, and compose.yaml's start
order and settings."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from app.settings import Settings
from tests.app.conftest import DB, ROOT
from tests.app.server import uvicorn_server
from tools.pgcluster import free_port
from tools.procs import start_and_wait, stop

DOCKERFILE = (ROOT / "Dockerfile").read_text()
BIN = Path(sys.executable).parent


def _instruction(name: str) -> list[str]:
    """The JSON (exec form) argument of the last `name` instruction, continuation lines joined."""
    text = DOCKERFILE.replace("\\\n", " ")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip().startswith(name + " ")]
    assert lines, f"no {name} in the Dockerfile"
    args = lines[-1][len(name) :].strip()
    if name == "HEALTHCHECK":
        args = args.split(" CMD ", 1)[1]
    parsed: list[str] = json.loads(args)
    return parsed


def test_hadolint_is_clean() -> None:
    r = subprocess.run([BIN / "hadolint", "Dockerfile"], cwd=ROOT, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def test_dockerfile_shape() -> None:
    stages = re.findall(r"^FROM (\S+)", DOCKERFILE, re.M)
    assert len(stages) >= 2
    assert stages[-1].startswith("python:3.11-slim")
    assert re.search(r"^USER 10001:10001$", DOCKERFILE, re.M)
    assert "HEALTHCHECK" in DOCKERFILE
    # the dependency layer comes from pyproject only, before any source is copied
    assert DOCKERFILE.index('pip install ".[app]"') < DOCKERFILE.index("COPY app ./app")
    # ...and is the same extra the test suite installs
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    assert any("app" in dep for dep in extras["test"] if dep.startswith("pgws["))
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    assert ignore[0] != "" and "**" in ignore and "app/map/node_modules" in ignore


def test_image_healthcheck_command_works(sites_db: DB) -> None:
    argv = _instruction("HEALTHCHECK")
    assert argv[0] == "python"
    with uvicorn_server(sites_db.settings()) as base:
        port = base.rsplit(":", 1)[1]
        ok = subprocess.run([sys.executable, *argv[1:]], env={**os.environ, "PORT": port},
                            capture_output=True, timeout=30)
        assert ok.returncode == 0, ok.stderr
    closed = subprocess.run([sys.executable, *argv[1:]], env={**os.environ, "PORT": port},
                            capture_output=True, timeout=30)
    assert closed.returncode != 0


def test_image_command_serves_the_app(sites_db: DB) -> None:
    """The CMD line as the container runs it: uvicorn from PATH, settings from the environment."""
    argv = _instruction("CMD")
    port = free_port()
    env = {
        "PATH": f"{BIN}:{os.environ['PATH']}",
        "PORT": str(port),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "DATABASE_URL": sites_db.dsn(),
        "WS_PROXY": sites_db.ws_proxy,
        "WS_SECURE": "false",
        "DB_MODE": "connect",
    }
    proc, _ = start_and_wait(argv, "Uvicorn running on", env=env, timeout=60)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as r:
            assert json.load(r) == {"status": "ok"}
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=10) as r:
            assert json.load(r) == {"status": "ready"}
        # uvicorn must leave X-Forwarded-For to the app's trusted-proxy rule
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/nearest", headers={"X-Forwarded-For": "81.2.69.142"}
        )
        with urllib.request.urlopen(req, timeout=10) as r:
            assert json.load(r)["location"].startswith("San Francisco (default")
    finally:
        stop(proc)


def test_compose_start_order_and_settings() -> None:
    doc: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = doc["services"]
    assert set(services) == {"db", "proxy", "loader", "app"}
    assert services["proxy"]["depends_on"] == {"db": {"condition": "service_healthy"}}
    assert services["loader"]["depends_on"] == {"proxy": {"condition": "service_healthy"}}
    assert services["app"]["depends_on"] == {
        "proxy": {"condition": "service_healthy"},
        "loader": {"condition": "service_completed_successfully"},
    }
    for name in ("db", "proxy"):
        assert services[name]["healthcheck"]["test"]
    assert "shared_preload_libraries=postgis-3" in services["db"]["command"]
    assert services["proxy"]["environment"]["ALLOW_ADDR_REGEX"] == "db:5432"
    known = {name.upper() for name in Settings.model_fields}
    for name in ("loader", "app"):
        env = services[name]["environment"]
        assert set(env) <= known, set(env) - known
        assert env["WS_PROXY"] == "proxy:9876/v2"
        assert env["DATABASE_URL"].endswith("@db:5432/whc")
    assert doc["networks"]["backend"]["internal"] is True
