"""compose.yaml against the compose-spec JSON schema (vendored by the check-jsonschema package),
then the written checks the schema cannot make: secrets required, restart policies, start
order, the production shape (PgBouncer in transaction mode, replicas sharing Redis, the front),
and addresses that agree with the proxy's allow-list and the front's upstreams."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from app.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
TEXT = (ROOT / "compose.yaml").read_text()
DOC: dict[str, Any] = yaml.safe_load(TEXT)
SERVICES: dict[str, Any] = DOC["services"]
BIN = Path(sys.executable).parent


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's `${VAR:?message}` / `${VAR:-default}` / `$$`, as `docker compose config` does."""

    def one(m: re.Match[str]) -> str:
        name, op, arg = m.group(1), m.group(2) or "", m.group(3) or ""
        if name in env and (env[name] or op not in (":-", ":?")):
            return env[name]
        if op == ":?":
            raise KeyError(f"{name}: {arg}")
        return arg

    text = re.sub(r"\$\{([A-Z_][A-Z0-9_]*)(?:(:[?-])([^}]*))?\}", one, text)
    return text.replace("$$", "$")


RESOLVED: dict[str, Any] = yaml.safe_load(interpolate(TEXT, {"WHC_DB_PASSWORD": "s3cret"}))


def test_compose_matches_the_compose_spec_schema() -> None:
    r = subprocess.run(
        [BIN / "check-jsonschema", "--builtin-schema", "vendor.compose-spec", "compose.yaml"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert r.returncode == 0, r.stdout + r.stderr


def test_the_schema_check_catches_a_bad_file(tmp_path: Path) -> None:
    bad = tmp_path / "compose.yaml"
    bad.write_text("services:\n  app:\n    restart: sometimes\n    ports: 8000\n")
    r = subprocess.run(
        [BIN / "check-jsonschema", "--builtin-schema", "vendor.compose-spec", str(bad)],
        capture_output=True, text=True, timeout=120,
    )
    assert r.returncode != 0


def test_secrets_are_required_never_defaulted() -> None:
    assert "change-me" not in TEXT
    uses = re.findall(r"\$\{WHC_DB_PASSWORD([^}]*)\}", TEXT)
    assert uses, "the database password is not taken from WHC_DB_PASSWORD"
    assert all(u.startswith(":?") for u in uses), uses
    for name in ("db", "pgbouncer"):
        env = SERVICES[name]["environment"]
        password = env.get("POSTGRES_PASSWORD") or env.get("DB_PASSWORD")
        assert password.startswith("${WHC_DB_PASSWORD:?"), password


def test_restart_policies() -> None:
    for name, svc in SERVICES.items():
        want = "no" if name == "loader" else "unless-stopped"
        assert svc.get("restart") == want, (name, svc.get("restart"))


def test_start_order_follows_health() -> None:
    dep = {n: s.get("depends_on", {}) for n, s in SERVICES.items()}
    assert dep["pgbouncer"]["db"] == {"condition": "service_healthy"}
    assert dep["proxy"]["db"] == {"condition": "service_healthy"}
    assert dep["loader"]["proxy"] == {"condition": "service_healthy"}
    assert dep["app"]["loader"] == {"condition": "service_completed_successfully"}
    assert dep["app"]["redis"] == {"condition": "service_healthy"}
    assert dep["front"]["app"] == {"condition": "service_healthy"}


def _hostport(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}"


def test_compose_refuses_to_start_without_the_password() -> None:
    try:
        interpolate(TEXT, {})
    except KeyError as exc:
        assert "WHC_DB_PASSWORD" in str(exc)
    else:
        raise AssertionError("compose.yaml interpolates without WHC_DB_PASSWORD")


def test_production_shape_and_consistent_addresses() -> None:
    services = RESOLVED["services"]
    app = services["app"]
    env = app["environment"]
    assert app["deploy"]["replicas"] >= 2
    assert "ports" not in app  # only the front is published
    assert env["CACHE_URL"].startswith("redis://redis:")
    assert services["pgbouncer"]["environment"]["POOL_MODE"] == "transaction"
    assert env["STATEMENT_CACHE_SIZE"] == "0"  # named statements break under transaction mode
    allow = re.compile(services["proxy"]["environment"]["ALLOW_ADDR_REGEX"])
    # the app goes through PgBouncer, the loader and the playground straight to Postgres,
    # and the proxy admits exactly those
    assert _hostport(env["DATABASE_URL"]) == "pgbouncer:6432"
    for url in (env["DATABASE_URL"], env["PLAYGROUND_DATABASE_URL"],
                services["loader"]["environment"]["DATABASE_URL"]):
        assert allow.fullmatch(_hostport(url)), url
    assert not allow.fullmatch("redis:6379") and not allow.fullmatch("db:22")
    assert urlsplit(env["PLAYGROUND_DATABASE_URL"]).username == "playground"
    # the playground's ws/wss choice is its own setting, and the browser reaches /v2 on the front
    raw = SERVICES["app"]["environment"]
    assert raw["PLAYGROUND_WS_SECURE"].startswith("${PLAYGROUND_WS_SECURE:-")
    assert env["PLAYGROUND_WS_PROXY"] == "localhost:8080/v2"
    assert urlsplit(env["DATABASE_URL"]).password == "s3cret"
    # every variable the app and loader get is a setting the app knows
    known = {name.upper() for name in Settings.model_fields}
    for name in ("app", "loader"):
        extra = set(SERVICES[name]["environment"]) - known - {"WHC_FILE"}
        assert not extra, (name, extra)
    assert DOC["networks"]["backend"]["internal"] is True


def test_database_init_creates_the_playground_role() -> None:
    mounts = SERVICES["db"]["volumes"]
    init = sorted(m.split(":")[1] for m in mounts if "docker-entrypoint-initdb.d" in m)
    sources = {m.split(":")[1]: m.split(":")[0] for m in mounts}
    assert [sources[i] for i in init] == ["./sql/schema.sql", "./sql/playground_role.sql"]
    for i in init:
        assert (ROOT / sources[i]).is_file()


def test_front_config_names_the_compose_services() -> None:
    front = SERVICES["front"]
    src, dest = front["volumes"][0].split(":")[:2]
    assert (ROOT / src / "nginx.conf").is_file() and dest == "/etc/nginx"
    conf = ROOT / src
    app_port = Settings().port
    assert f"server app:{app_port}" in (conf / "app-servers.conf").read_text()
    assert "server proxy:9876" in (conf / "wsproxy-servers.conf").read_text()
    assert SERVICES["proxy"]["environment"]["LISTEN_PORT"] == ":9876"
    listen = re.search(r"listen (\d+);", (conf / "listen.conf").read_text())
    assert listen and front["ports"] == [f"{listen.group(1)}:{listen.group(1)}"]


def test_loader_reads_a_file_or_the_feed() -> None:
    loader = SERVICES["loader"]
    cmd = " ".join(loader["command"])
    assert "python -m app.load \"/data/$$WHC_FILE\"" in cmd
    assert "else exec python -m app.load --fallback-sample;" in cmd
    assert "./data:/data:ro" in loader["volumes"]
    assert "default" in loader["networks"]  # the feed is downloaded from outside
