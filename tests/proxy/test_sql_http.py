"""POST /sql (Neon's SQL-over-HTTP protocol) on the real proxy process against the private
cluster: the wire shapes, credential checks, target checks, session reset and limits."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from tests.proxy.conftest import ROOT, ProxyProc, Target
from tools.pgcluster import Cluster, free_port


@dataclass
class SQLProxy:
    proc: ProxyProc
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/sql"


def start_sql_proxy(pg: Cluster, regex: str | None = None, **env: str) -> SQLProxy:
    """The real proxy with the endpoint on a second loopback port."""
    port = free_port()
    proc = ProxyProc(
        {
            "ALLOW_ADDR_REGEX": regex or rf"(127\.0\.0\.1|localhost|\[::1\]):{pg.port}",
            "SQL_HTTP_LISTEN": f"127.0.0.1:{port}",
            **env,
        }
    )
    proc.wait_for("sql over http listening")
    return SQLProxy(proc, port)


LIMITS = {
    "SQL_HTTP_POOL_SIZE": "2",  # requests in turn reuse the most recent idle backend
    "SQL_HTTP_MAX_BODY": "64KiB",
    "SQL_HTTP_MAX_ROWS": "1000",
    "SQL_HTTP_MAX_RESPONSE": "256KiB",
    "SQL_HTTP_STATEMENT_TIMEOUT": "500ms",
    "SQL_HTTP_CORS_ORIGINS": "https://ok.example",
    "HANDSHAKE_TIMEOUT": "2s",  # the time allowed for a request body
}


@pytest.fixture(scope="module")
def sqlp(pg: Cluster) -> Iterator[SQLProxy]:
    p = start_sql_proxy(pg, **LIMITS)
    yield p
    p.proc.stop()


@pytest_asyncio.fixture(loop_scope="session")
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30) as client:
        yield client


async def post(
    http: httpx.AsyncClient,
    sqlp: SQLProxy,
    dsn: str,
    body: Any,
    **headers: str,
) -> httpx.Response:
    return await http.post(
        sqlp.url,
        json=body,
        headers={"Neon-Connection-String": dsn, "Neon-Array-Mode": "true", **headers},
    )


async def test_query_answers_fields_rows_command_and_count(
    http: httpx.AsyncClient, sqlp: SQLProxy, pg: Cluster
) -> None:
    r = await post(
        http,
        sqlp,
        pg.dsn("scram_user"),
        {
            "query": "select $1::int + 1 as n, $2::text as t, null::date as d",
            "params": ["41", None],
        },
    )
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["rows"] == [["42", None, None]]
    assert doc["command"] == "SELECT" and doc["rowCount"] == 1
    assert [(f["name"], f["dataTypeID"]) for f in doc["fields"]] == [
        ("n", 23),
        ("t", 25),
        ("d", 1082),
    ]
    r = await http.post(
        sqlp.url,
        json={"query": "select 1 as a, 'x' as b"},
        headers={"Neon-Connection-String": pg.dsn("scram_user")},
    )
    assert r.json()["rows"] == [{"a": "1", "b": "x"}]  # object mode without Neon-Array-Mode


async def test_batch_runs_as_one_transaction(
    http: httpx.AsyncClient, sqlp: SQLProxy, pg: Cluster
) -> None:
    r = await post(
        http,
        sqlp,
        pg.dsn("scram_user"),
        {
            "queries": [
                {"query": "select current_setting('transaction_isolation')", "params": []},
                {"query": "select txid_current() = txid_current()"},
            ]
        },
        **{"Neon-Batch-Isolation-Level": "RepeatableRead", "Neon-Batch-Read-Only": "true"},
    )
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert results[0]["rows"] == [["repeatable read"]]
    assert results[1]["rows"] == [["t"]]


async def test_wrong_password_after_a_right_one_is_refused(
    http: httpx.AsyncClient, sqlp: SQLProxy, pg: Cluster
) -> None:
    good = pg.dsn("scram_user")
    r = await post(http, sqlp, good, {"query": "select pg_backend_pid()"})
    assert r.status_code == 200, r.text
    pid = r.json()["rows"][0][0]
    mark = sqlp.proc.mark()
    bad = good.replace("scr%40m", "wrong")
    assert bad != good
    r = await post(http, sqlp, bad, {"query": "select pg_backend_pid()"})
    assert r.status_code == 400
    assert r.json()["code"] == "28P01"
    line = await sqlp.proc.await_line(r"sql \d+ .*status=400", start=mark)
    assert "backend=-" in line
    # the right password still reaches its warm backend
    r = await post(http, sqlp, good, {"query": "select pg_backend_pid()"})
    assert r.status_code == 200 and r.json()["rows"][0][0] == pid


async def test_session_state_never_leaks_between_requests(
    http: httpx.AsyncClient, sqlp: SQLProxy, pg: Cluster
) -> None:
    dsn = pg.dsn("md5_user")

    async def one(sql: str) -> list[Any]:
        r = await post(http, sqlp, dsn, {"query": sql})
        assert r.status_code == 200, r.text
        rows: list[Any] = r.json()["rows"]
        return rows

    pid = (await one("select pg_backend_pid()"))[0][0]
    await one("set work_mem = '77MB'")
    await one("create temp table leak_t (n int)")
    await one("select pg_advisory_lock(4242)")
    await one("prepare leak_p as select 1")
    await one("listen leak_channel")
    after = await one(
        "select pg_backend_pid(), current_setting('work_mem'), to_regclass('leak_t'),"
        " (select count(*) from pg_locks where locktype = 'advisory' and pid = pg_backend_pid()),"
        " (select count(*) from pg_prepared_statements),"
        " (select count(*) from pg_listening_channels())"
    )
    assert after[0][0] == pid  # the same backend served every request
    assert after[0][1:] == ["4MB", None, "0", "0", "0"]
    # a transaction left open is rolled back: SAVEPOINT outside one is an error
    await one("begin")
    r = await post(http, sqlp, dsn, {"query": "savepoint s"})
    assert r.status_code == 400 and r.json()["code"] == "25P01", r.text
    assert (await one("select pg_backend_pid()"))[0][0] == pid


async def test_target_not_allowed_is_refused_before_any_connection(
    http: httpx.AsyncClient, sqlp: SQLProxy, target: Target
) -> None:
    r = await post(
        http, sqlp, f"postgresql://u:p@127.0.0.1:{target.port}/db", {"query": "select 1"}
    )
    assert r.status_code == 403
    assert "not allowed" in r.json()["message"]
    assert target.count == 0


async def test_denied_address_is_refused_after_resolution(
    http: httpx.AsyncClient, pg: Cluster, target: Target
) -> None:
    p = start_sql_proxy(
        pg, rf"(127\.0\.0\.2|127\.0\.0\.1):{target.port}", DENY_NETWORKS="127.0.0.2/32"
    )
    try:
        r = await post(
            http, p, f"postgresql://u:p@127.0.0.2:{target.port}/db", {"query": "select 1"}
        )
        assert r.status_code == 403
        assert "denied address" in r.json()["message"]
        assert target.count == 0
    finally:
        p.proc.stop()


async def test_body_rows_bytes_and_time_limits_answer_clearly(
    http: httpx.AsyncClient, sqlp: SQLProxy, pg: Cluster
) -> None:
    dsn = pg.dsn("scram_user")
    r = await post(http, sqlp, dsn, {"query": "select $1", "params": ["x" * 70_000]})
    assert r.status_code == 413
    assert r.json()["message"] == "request body larger than 65536 bytes"
    r = await post(http, sqlp, dsn, {"query": "select generate_series(1, 1001)"})
    assert r.status_code == 507
    assert r.json()["message"] == "result has 1001 rows, more than 1000"
    r = await post(
        http, sqlp, dsn, {"query": "select repeat('x', 1000) from generate_series(1, 300)"}
    )
    assert r.status_code == 507
    assert "response is too large (max is 262144 bytes)" in r.json()["message"]
    r = await post(http, sqlp, dsn, {"query": "select pg_sleep(3)"})
    assert r.status_code == 400
    assert r.json()["code"] == "57014"
    assert "statement timeout" in r.json()["message"]
    # a batch lifting its own statement_timeout still meets the request's deadline
    r = await post(
        http,
        sqlp,
        dsn,
        {
            "queries": [
                {"query": "set local statement_timeout = 0"},
                {"query": "select pg_sleep(8)"},
            ]
        },
    )
    assert r.status_code == 400 and r.json()["code"] == "57014"
    assert "deadline" in r.json()["message"]
    # and the backend is still good afterwards
    r = await post(http, sqlp, dsn, {"query": "select 1"})
    assert r.status_code == 200 and r.json()["rows"] == [["1"]]


async def test_bad_requests_get_clear_errors(
    http: httpx.AsyncClient, sqlp: SQLProxy, pg: Cluster
) -> None:
    r = await http.post(
        sqlp.url, content=b"{not json", headers={"Neon-Connection-String": pg.dsn()}
    )
    assert r.status_code == 400 and "not JSON" in r.json()["message"]
    r = await http.post(sqlp.url, json={"query": "select 1"})
    assert r.status_code == 400
    assert r.json()["message"] == "missing Neon-Connection-String header"
    r = await post(http, sqlp, "mysql://u@h/d", {"query": "select 1"})
    assert r.status_code == 400 and "postgres://" in r.json()["message"]
    r = await post(http, sqlp, pg.dsn(), {"query": 1})
    assert r.status_code == 400
    r = await http.get(sqlp.url)
    assert r.status_code == 405
    r = await http.post(sqlp.url.replace("/sql", "/other"), json={})
    assert r.status_code == 404


async def test_cors_preflight_and_origin_echo(http: httpx.AsyncClient, sqlp: SQLProxy) -> None:
    r = await http.options(sqlp.url, headers={"Origin": "https://ok.example"})
    assert r.status_code == 204
    assert r.headers["access-control-allow-origin"] == "https://ok.example"
    assert "Neon-Connection-String" in r.headers["access-control-allow-headers"]
    r = await http.options(sqlp.url, headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in r.headers


async def test_token_and_rate_limit(http: httpx.AsyncClient, pg: Cluster) -> None:
    p = start_sql_proxy(pg, SQL_HTTP_AUTH_TOKEN="s3cret", SQL_HTTP_RATE_LIMIT="3")
    try:
        dsn = pg.dsn("scram_user")
        r = await post(http, p, dsn, {"query": "select 1"})
        assert r.status_code == 401
        r = await post(http, p, dsn, {"query": "select 1"}, Authorization="Bearer nope")
        assert r.status_code == 401
        r = await post(http, p, dsn, {"query": "select 1"}, Authorization="Bearer s3cret")
        assert r.status_code == 200, r.text
        statuses = [
            (await post(http, p, dsn, {"query": 1}, Authorization="Bearer s3cret")).status_code
            for _ in range(8)
        ]
        assert 429 in statuses
        await p.proc.await_line(r"status=429 .*reason='rate limited'")
    finally:
        p.proc.stop()


async def test_endpoint_absent_when_disabled(http: httpx.AsyncClient, pg: Cluster) -> None:
    proc = ProxyProc({"ALLOW_ADDR_REGEX": rf"127\.0\.0\.1:{pg.port}"})
    try:
        assert "sql over http" not in proc.log
        try:
            r = await http.post(
                f"http://127.0.0.1:{proc.port}/sql",
                json={"query": "select 1"},
                headers={"Neon-Connection-String": pg.dsn()},
            )
        except httpx.HTTPError:
            pass  # the WebSocket listener may just close on a POST
        else:
            assert r.status_code != 200
    finally:
        proc.stop()


def test_help_describes_the_endpoint() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "proxy", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert "--sql-http-listen" in out and "POST /sql" in out
    assert "SQL_HTTP_MAX_ROWS" in out and "SQL_HTTP_RATE_LIMIT" in out


async def test_backend_that_died_while_idle_is_replaced(
    http: httpx.AsyncClient, sqlp: SQLProxy, pg: Cluster
) -> None:
    dsn = pg.dsn("tls_user")  # a key no other test uses: its only backend is the one killed
    r = await post(http, sqlp, dsn, {"query": "select pg_backend_pid()"})
    assert r.status_code == 200, r.text
    pid = r.json()["rows"][0][0]
    assert pg.psql(f"select pg_terminate_backend({pid})").strip() == "t"
    r = await post(http, sqlp, dsn, {"query": "select pg_backend_pid()"})
    assert r.status_code == 200, r.text
    assert r.json()["rows"][0][0] != pid
    await sqlp.proc.await_line("sql backend lost while idle, retrying on a new one")


async def raw_exchange(port: int, data: bytes, within: float = 15) -> bytes:
    """Send raw bytes, return everything the server sends until it closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        async with asyncio.timeout(within):
            return await reader.read(-1)
    finally:
        writer.close()


async def test_malformed_and_slow_requests_are_answered_and_closed(sqlp: SQLProxy) -> None:
    out = await raw_exchange(sqlp.port, b"GARBAGE\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 400 ")
    assert b"bad HTTP request" in out
    head = b"POST /sql HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"
    out = await raw_exchange(sqlp.port, head + b'{"query": ')  # and then nothing more
    assert out.startswith(b"HTTP/1.1 408 ")
    assert b"request body not received in time" in out


async def test_connections_per_ip_are_limited(pg: Cluster) -> None:
    p = start_sql_proxy(pg, MAX_CONNECTIONS_PER_IP="2")
    held = []
    try:
        for _ in range(2):
            held.append(await asyncio.open_connection("127.0.0.1", p.port))
        # the two are really held: the proxy answers on them
        for _reader, writer in held:
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        for reader, _writer in held:
            assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200 ")
        out = await raw_exchange(p.port, b"")
        assert out.startswith(b"HTTP/1.1 503 ") and b"too many connections" in out
    finally:
        for _, writer in held:
            writer.close()
        p.proc.stop()


def _jwks_and_signer(tmp: Path) -> tuple[Path, Any]:
    """A throw-away EC key: its public half in a JWKS file, the private half to sign with."""
    import jwt
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    public = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    path = tmp / "jwks.json"
    path.write_text(json.dumps({"keys": [{**public, "kid": "k1", "alg": "ES256", "use": "sig"}]}))

    def sign(claims: dict[str, Any], kid: str = "k1") -> str:
        return jwt.encode(claims, key, algorithm="ES256", headers={"kid": kid})

    return path, sign


async def test_jwt_from_a_jwks_file(http: httpx.AsyncClient, pg: Cluster, tmp_path: Path) -> None:
    path, sign = _jwks_and_signer(tmp_path)
    p = start_sql_proxy(pg, SQL_HTTP_JWKS_FILE=str(path))
    try:
        dsn, body = pg.dsn("scram_user"), {"query": "select 1"}
        now = int(time.time())
        good = sign({"sub": "u", "exp": now + 60})
        r = await post(http, p, dsn, body, Authorization=f"Bearer {good}")
        assert r.status_code == 200, r.text
        for token, why in (
            (sign({"sub": "u", "exp": now - 60}), "expired"),
            (sign({"sub": "u"}), "exp"),
            (sign({"sub": "u", "exp": now + 60}, kid="other"), "no key"),
            (good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB"), "invalid token"),
        ):
            r = await post(http, p, dsn, body, Authorization=f"Bearer {token}")
            assert r.status_code == 401 and why in r.json()["message"], r.text
        r = await post(http, p, dsn, body)
        assert r.status_code == 401 and r.json()["message"] == "missing bearer token"
    finally:
        p.proc.stop()


def test_unusable_jwks_file_stops_the_proxy(pg: Cluster, tmp_path: Path) -> None:
    bad = tmp_path / "jwks.json"
    bad.write_text('{"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "s"}]}')
    out = subprocess.run(
        [sys.executable, "-m", "proxy"],
        cwd=ROOT,
        env={
            **os.environ,
            "LISTEN_PORT": f"127.0.0.1:{free_port()}",
            "SQL_HTTP_LISTEN": f"127.0.0.1:{free_port()}",
            "SQL_HTTP_JWKS_FILE": str(bad),
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert "bad configuration: SQL_HTTP_JWKS_FILE" in out.stderr
    assert "Traceback" not in out.stderr
