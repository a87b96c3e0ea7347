"""The real neon() HTTP client (npm @neondatabase/serverless, pinned by package-lock.json, run
with node) against our proxy's POST /sql: it must work unmodified, configured only with its
documented neonConfig.fetchEndpoint."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.proxy.test_sql_http import SQLProxy, start_sql_proxy
from tools.pgcluster import Cluster

JS = Path(__file__).parent / "js"


@pytest.fixture(scope="module")
def sqlp(pg: Cluster) -> Iterator[SQLProxy]:
    pg.psql(
        "DROP TABLE IF EXISTS http_tx_t; CREATE TABLE http_tx_t (n int NOT NULL);"
        "GRANT ALL ON http_tx_t TO scram_user"
    )
    p = start_sql_proxy(pg)
    yield p
    p.proc.stop()


async def _node(case: str, sqlp: SQLProxy, dsn: str) -> Any:
    if not (JS / "node_modules" / "@neondatabase" / "serverless").is_dir():
        raise AssertionError("tests/proxy/js/node_modules missing: run scripts/bootstrap.sh")
    env = {**os.environ, "DSN": dsn, "SQL_URL": sqlp.url}
    proc = await asyncio.create_subprocess_exec(
        "node",
        "neon_http.mjs",
        case,
        cwd=JS,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()[-2000:]
    return json.loads(out.decode().strip().splitlines()[-1])


async def test_tagged_template_parameters_of_every_common_type(sqlp: SQLProxy, pg: Cluster) -> None:
    r = await _node("template", sqlp, pg.dsn("scram_user"))
    assert r == {
        "i": 42,
        "big": str(2**53 - 1),  # node-postgres leaves int8 as a string
        "f": 1.5,
        "s": "ü→ok '\"\\",
        "b": True,
        "n": None,
        "ts": "2024-02-29T12:34:56.789Z",
        "bin": [0, 1, 254, 255],
        "arr": [1, 2, 3],
        "j": {"a": [1, "x"], "b": None},
        "num": "12.345",
        "d": True,
        "u": "9f0e4b5c-6d7a-4b8c-9d0e-1f2a3b4c5d6e",
    }


async def test_query_method_array_object_and_full_results(sqlp: SQLProxy, pg: Cluster) -> None:
    r = await _node("query", sqlp, pg.dsn("scram_user"))
    assert r["objects"] == [{"s": 5, "t": "x"}]
    assert r["arrays"] == [[7, "y"]]
    assert r["full"] == {
        "command": "SELECT",
        "rowCount": 3,
        "rows": [{"n": 1}, {"n": 2}, {"n": 3}],
        "fields": [["n", 23]],
    }
    assert r["cmd"] == {"command": "CREATE", "rowCount": None}
    r = await _node("arraymode", sqlp, pg.dsn("scram_user"))
    assert r == {"rows": [[1, "two"]], "fields": ["one", "two"], "rowAsArray": True}


async def test_transaction_isolation_and_read_only(sqlp: SQLProxy, pg: Cluster) -> None:
    r = await _node("transaction", sqlp, pg.dsn("scram_user"))
    assert r["iso"] == "serializable"
    assert r["ro"] == "on"
    assert r["n"] == 4
    assert r["refused"]["code"] == "25006"  # read_only_sql_transaction
    assert "read-only transaction" in r["refused"]["message"]
    assert r["plain"] == "read committed"


async def test_failing_statement_rolls_the_whole_transaction_back(
    sqlp: SQLProxy, pg: Cluster
) -> None:
    pg.psql("TRUNCATE http_tx_t")
    r = await _node("rollback", sqlp, pg.dsn("scram_user"))
    assert r["error"]["code"] == "22012"
    assert r["error"]["message"] == "division by zero"
    assert r["count"] == 0
    assert pg.psql("SELECT count(*) FROM http_tx_t").strip() == "0"


async def test_errors_carry_the_postgres_fields(sqlp: SQLProxy, pg: Cluster) -> None:
    r = await _node("error", sqlp, pg.dsn("scram_user"))
    assert r["div"]["code"] == "22012"
    assert r["div"]["severity"] == "ERROR"
    assert r["div"]["name"] == "NeonDbError"
    assert r["undef"]["code"] == "42P01"
    assert r["undef"]["position"] == "15"
    assert 'relation "no_such_table_here" does not exist' in r["undef"]["message"]
    assert r["notnull"]["code"] == "23502"
    assert r["notnull"]["table"] == "http_tx_t"
    assert r["notnull"]["column"] == "n"
    assert r["notnull"]["schema"] == "public"
    assert "detail" in r["notnull"]
