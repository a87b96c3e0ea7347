"""The pure parts of SQL over HTTP: Neon's request and response shapes, the credential digest,
the rate limit, the settings, and the one import of driver/ that proxy/ is allowed."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from driver.http import _tag
from proxy.config import ConfigError, load
from proxy.sqlhttp.neon import (
    BadRequest,
    ConnInfo,
    error_body,
    parse_connection_string,
    parse_request,
    result_body,
)

ROOT = Path(__file__).resolve().parents[2]


def test_connection_string_parts() -> None:
    info = parse_connection_string("postgresql://us%40er:p%3Aw%2Fü@db.internal:6543/my%20db?x=1")
    assert info == ConnInfo("db.internal", 6543, "us@er", "p:w/ü", "my db")
    assert info.target == "db.internal:6543"
    v6 = parse_connection_string("postgres://u@[::1]/d")
    assert (v6.host, v6.port, v6.password, v6.target) == ("::1", 5432, "", "[::1]:5432")
    assert parse_connection_string("postgres://u:p@h").database == "u"
    for bad in ("mysql://u@h/d", "postgres://h/d", "postgres://u@/d", "postgres://u@h:99999/d"):
        with pytest.raises(BadRequest) as info_:
            parse_connection_string(bad)
        assert info_.value.status == 400


def test_request_shapes() -> None:
    headers = {"neon-connection-string": "postgres://u:p@h/d", "neon-array-mode": "true"}
    one = parse_request(headers, b'{"query": "select $1, $2, $3", "params": ["a", null, 3]}')
    assert not one.batch and one.array_mode
    assert one.queries[0].sql == "select $1, $2, $3"
    assert one.queries[0].params == ("a", None, "3")
    batch = parse_request(
        {
            **headers,
            "neon-batch-isolation-level": "RepeatableRead",
            "neon-batch-read-only": "true",
        },
        b'{"queries": [{"query": "select 1"}, {"query": "select $1", "params": [true, {"a": 1}]}]}',
    )
    assert batch.batch and batch.isolation == "repeatable_read" and batch.readonly
    assert not batch.deferrable
    assert batch.queries[1].params == ("true", '{"a":1}')
    for hdrs, body, msg in (
        ({}, b"{}", "missing Neon-Connection-String"),
        (headers, b"[1", "not JSON"),
        (headers, b'{"query": 1}', "string 'query'"),
        (headers, b'{"query": "x", "params": {}}', "must be an array"),
        (headers, b'{"queries": {}}', "must be an array"),
        ({**headers, "neon-batch-isolation-level": "Chaos"}, b'{"query": "x"}', "one of"),
        ({**headers, "neon-array-mode": "yes"}, b'{"query": "x"}', "true or false"),
    ):
        with pytest.raises(BadRequest, match=msg):
            parse_request(hdrs, body)


class _F:
    def __init__(self, name: str, oid: int) -> None:
        self.name, self.type_oid = name, oid
        self.table_oid, self.column, self.type_size, self.type_modifier = 0, 0, 4, -1


def test_result_shapes_and_tags() -> None:
    fields = [_F("a", 23), _F("b", 25)]
    body = result_body(fields, [("1", None)], "SELECT 1", array_mode=True)
    assert body["rows"] == [["1", None]] and body["rowCount"] == 1
    assert body["command"] == "SELECT" and body["commandTag"] == "SELECT 1"
    assert body["fields"][0]["dataTypeID"] == 23 and body["fields"][1]["name"] == "b"
    assert result_body(fields, [("1", "x")], "SELECT 1", False)["rows"] == [{"a": "1", "b": "x"}]
    assert result_body([], [], "INSERT 0 3", True)["rowCount"] == 3
    assert result_body([], [], "CREATE TABLE", True)["rowCount"] is None
    # driver.http without our commandTag (Neon's own proxy): the tag rebuilt
    assert _tag("INSERT", 3) == "INSERT 0 3"
    assert _tag("UPDATE", 0) == "UPDATE 0"
    assert _tag("CREATE", None) == "CREATE"


def test_error_body_uses_node_postgres_names() -> None:
    import driver

    exc = driver.PostgresError.from_fields(
        {"S": "ERROR", "C": "23502", "M": "null value", "t": "tbl", "c": "col", "P": "7"}
    )
    assert error_body(exc) == {
        "message": "null value",
        "severity": "ERROR",
        "code": "23502",
        "table": "tbl",
        "column": "col",
        "position": "7",
    }


def test_credential_digest_is_keyed_and_separates_fields() -> None:
    from proxy.sqlhttp.backends import credential_digest

    a = ConnInfo("h", 5432, "u", "pw", "d")
    assert credential_digest(a) == credential_digest(ConnInfo("h", 5432, "u", "pw", "d"))
    assert credential_digest(a) != credential_digest(ConnInfo("h", 5432, "u", "pW", "d"))
    assert credential_digest(a) != credential_digest(ConnInfo("h", 5432, "u", "", "d"))
    assert b"pw" not in credential_digest(a)


def test_rate_limit_bucket() -> None:
    from proxy.sqlhttp.server import RateLimit

    rl = RateLimit(3)
    assert [rl.allow("a") for _ in range(4)] == [True, True, True, False]
    assert rl.allow("b")  # per address
    assert all(RateLimit(0).allow("a") for _ in range(1000))


def test_settings_off_by_default_and_parsed() -> None:
    assert load([], {}).sql_http_listen is None
    cfg = load(
        ["--sql-http-listen", "127.0.0.1:9877"],
        {"SQL_HTTP_MAX_BODY": "2MiB", "SQL_HTTP_STATEMENT_TIMEOUT": "1m"},
    )
    assert cfg.sql_http_listen == ("127.0.0.1", 9877)
    assert cfg.sql_http_max_body == 2 << 20 and cfg.sql_http_statement_timeout == 60.0
    with pytest.raises(ConfigError, match="SQL_HTTP_POOL_SIZE"):
        load([], {"SQL_HTTP_POOL_SIZE": "-1"})


def test_only_the_sql_endpoint_imports_the_driver() -> None:
    """proxy/ imports nothing from the repository, except proxy/sqlhttp (which needs a
    Postgres client); and the relay never loads it unless the endpoint is enabled."""
    offenders = []
    for path in sorted((ROOT / "proxy").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                if name.split(".")[0] in ("driver", "app", "tools", "tests"):
                    if not rel.startswith("proxy/sqlhttp/") or name.split(".")[0] != "driver":
                        offenders.append((rel, name))
    assert not offenders
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, proxy.__main__, proxy.server, proxy.config;"
            "print(any(m == 'driver' or m.startswith(('driver.', 'proxy.sqlhttp', 'h11'))"
            " for m in sys.modules))",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.strip()
    assert out == "False"
