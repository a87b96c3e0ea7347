"""The Dockerfile read as text: hadolint clean, dependencies from the lock file only (pinned
with hashes), a non-root runtime, and the files /playground and /docs need copied in."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
BIN = Path(sys.executable).parent


def test_hadolint_is_clean() -> None:
    r = subprocess.run([BIN / "hadolint", "Dockerfile"], cwd=ROOT, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def test_hadolint_would_catch_a_bad_line(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:3.11-slim\nRUN pip install fastapi\nRUN cd /srv && ls\n")
    r = subprocess.run([BIN / "hadolint", str(bad)], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "DL3013" in r.stdout and "DL3003" in r.stdout


def test_dependencies_come_from_the_lock_file_only() -> None:
    installs = re.findall(r"^RUN pip install (.*)$", DOCKERFILE, re.M)
    assert installs == ["--require-hashes --no-deps -r /build/requirements.lock"]
    assert DOCKERFILE.index("COPY requirements.lock") < DOCKERFILE.index("COPY app ./app")
    lock = (ROOT / "requirements.lock").read_text()
    pins = re.findall(r"^(\S+)==(\S+) \\$", lock, re.M)
    assert len(pins) > 20
    # every package pinned has at least one hash, and the regeneration command is written down
    blocks = re.split(r"\n(?=\S)", lock)
    for block in blocks:
        if "==" in block.split("\n", 1)[0]:
            assert "--hash=sha256:" in block, block.split("\n", 1)[0]
    assert "pip-compile" in lock and "--generate-hashes" in lock
    names = {name.lower() for name, _ in pins}
    for needed in ("fastapi", "uvicorn", "websockets", "scramp", "redis", "pydantic-settings"):
        assert needed in names, needed


def test_runtime_stage_shape() -> None:
    stages = re.findall(r"^FROM (\S+)(?: AS (\S+))?", DOCKERFILE, re.M)
    assert [name for _, name in stages] == ["npm", "deps", "runtime"]
    assert stages[-1][0].startswith("python:3.11-slim")
    assert re.search(r"^USER 10001:10001$", DOCKERFILE, re.M)
    for copied in ("COPY web ./web", "COPY sql ./sql", "swagger-ui-dist", "node_modules/pyodide"):
        assert copied in DOCKERFILE, copied
    assert 'CMD ["python", "-m", "app.serve"]' in DOCKERFILE
