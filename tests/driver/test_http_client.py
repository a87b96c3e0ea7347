"""driver.http: queries over POST /sql to the real proxy process, compared with the socket
driver on the same cluster (same Records, same codecs, same exception classes)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator

import pytest

import driver
import driver.http
from tests.driver.codec_corpus import CASES, TIMEZONES, same
from tests.proxy.test_sql_http import SQLProxy, start_sql_proxy
from tools.pgcluster import Cluster, refused_port

INFERRED = [c for c in CASES if c.roundtrip and c.infer]


@pytest.fixture(scope="module")
def sqlp(pg: Cluster) -> Iterator[SQLProxy]:
    pg.psql(
        "DROP TABLE IF EXISTS http_client_t;"
        "CREATE TABLE http_client_t (n int PRIMARY KEY, note text CHECK (note <> 'bad'));"
        "GRANT ALL ON http_client_t TO scram_user"
    )
    p = start_sql_proxy(pg, SQL_HTTP_RATE_LIMIT="0")
    yield p
    p.proc.stop()


@pytest.fixture
async def sql(sqlp: SQLProxy, pg: Cluster) -> AsyncIterator[driver.http.HTTPClient]:
    async with driver.http.connect(pg.dsn("scram_user"), endpoint=sqlp.url) as client:
        yield client


@pytest.fixture
async def sock(pg: Cluster) -> AsyncIterator[driver.Connection]:
    async with await driver.connect(pg.dsn("scram_user"), sslmode="disable") as conn:
        yield conn


@pytest.mark.parametrize("tz", TIMEZONES)
async def test_corpus_equals_the_socket_driver(
    tz: str, sql: driver.http.HTTPClient, sock: driver.Connection
) -> None:
    """Every corpus value, in one transaction per session TimeZone, equals what the socket
    driver returns for the same expression under the same TimeZone."""
    await sock.execute(f"set timezone to '{tz}'")
    results = await sql.transaction(
        [f"set local timezone to '{tz}'", *(f"select {c.sql} as v" for c in CASES)]
    )
    assert len(results) == len(CASES) + 1
    mismatches = []
    for case, result in zip(CASES, results[1:], strict=True):
        theirs = await sock.fetchrow(f"select {case.sql} as v")
        assert theirs is not None and len(result) == 1
        ours = result[0]
        assert type(ours) is not tuple and list(ours.keys()) == ["v"]
        if not same(ours["v"], theirs["v"]):
            mismatches.append((case.sql, ours["v"], theirs["v"]))
    assert not mismatches


async def test_corpus_values_go_back_as_parameters(
    sql: driver.http.HTTPClient, sock: driver.Connection
) -> None:
    """The socket driver's value, sent over HTTP as a parameter cast to the column's type,
    comes back equal, or is refused with a typed error, never changed: the protocol sends
    every parameter as text of a type the server infers (no declared OIDs), so a value whose
    text is not its type's input syntax (pg_lsn as an int, "char" as bytes) cannot pass."""
    await sock.execute("set timezone to 'UTC'")
    refused, passed = [], 0
    for case in INFERRED:
        row = await sock.fetchrow(
            f"select {case.sql} as v, (select quote_ident(typname) from pg_type"
            f" where oid = pg_typeof({case.sql})) as t"
        )
        assert row is not None
        try:
            back = await sql.transaction(
                ["set local timezone to 'UTC'", (f"select $1::{row['t']} as v", [row["v"]])]
            )
        except driver.PostgresError as exc:
            assert exc.sqlstate is not None and exc.sqlstate[:2] in ("22", "42"), exc
            refused.append(case.sql)
            continue
        assert same(back[1][0]["v"], row["v"]), (case.sql, back[1][0]["v"], row["v"])
        passed += 1
    assert passed >= len(INFERRED) * 9 // 10, refused


async def test_fetch_methods_and_command_tags(sql: driver.http.HTTPClient) -> None:
    rows = await sql.fetch("select n, n * 2 as twice from generate_series(1, $1::int) n", 3)
    assert [tuple(r) for r in rows] == [(1, 2), (2, 4), (3, 6)]
    assert isinstance(rows[0], driver.Record) and rows[1]["twice"] == 4
    assert await sql.fetchrow("select 1 where false") is None
    row = await sql.fetchrow("select 'a' as x, 2.5::float8 as y")
    assert row is not None and row["x"] == "a" and row["y"] == 2.5
    assert await sql.fetchval("select $1::int + 1, 'z'", 41) == 42
    assert await sql.fetchval("select 1, 'z'", column=1) == "z"
    await sql.execute("delete from http_client_t")
    assert await sql.execute("insert into http_client_t values ($1, $2), (2, 'b')", 1, "a") == (
        "INSERT 0 2"
    )
    assert await sql.execute("update http_client_t set note = 'c'") == "UPDATE 2"
    assert await sql.execute("select 1") == "SELECT 1"
    assert await sql.execute("create temp table x (n int)") == "CREATE TABLE"


async def test_transaction_options_and_rollback(sql: driver.http.HTTPClient, pg: Cluster) -> None:
    iso, ro = await sql.transaction(
        ["show transaction_isolation", "show transaction_read_only"],
        isolation="serializable",
        readonly=True,
    )
    assert iso[0][0] == "serializable" and ro[0][0] == "on"
    await sql.execute("delete from http_client_t")
    with pytest.raises(driver.errors.CheckViolation) as info:
        await sql.transaction(
            [
                ("insert into http_client_t values ($1, $2)", (10, "ok")),
                ("insert into http_client_t values ($1, $2)", (11, "bad")),
            ]
        )
    assert info.value.constraint_name == "http_client_t_note_check"
    assert info.value.table_name == "http_client_t"
    assert await sql.fetchval("select count(*) from http_client_t") == 0
    done = await sql.transaction([("insert into http_client_t values ($1, $2)", (12, "ok"))])
    assert done[0].status == "INSERT 0 1"
    with pytest.raises(driver.InterfaceError):
        await sql.transaction(["select 1"], isolation="chaos")


async def test_errors_are_the_socket_drivers_classes(
    sql: driver.http.HTTPClient, sock: driver.Connection, sqlp: SQLProxy, pg: Cluster
) -> None:
    for query, cls in (
        ("select 1/0", driver.errors.DivisionByZero),
        ("select * from nowhere_at_all", driver.errors.UndefinedTable),
        ("select 'x'::int", driver.errors.InvalidTextRepresentation),
    ):
        with pytest.raises(cls) as over_http:
            await sql.fetch(query)
        with pytest.raises(cls) as over_socket:
            await sock.fetch(query)
        assert over_http.value.as_dict() == over_socket.value.as_dict()
    wrong = re.sub(r":[^:@]*@", ":nope@", pg.dsn("scram_user"))
    async with driver.http.connect(wrong, endpoint=sqlp.url) as bad:
        with pytest.raises(driver.errors.InvalidPassword):
            await bad.fetchval("select 1")
    far = driver.http.connect("postgresql://u:p@10.255.255.1:5432/db", endpoint=sqlp.url)
    with pytest.raises(driver.InterfaceError, match="HTTP 403"):
        await far.fetchval("select 1")
    await far.close()
    with pytest.raises(driver.InterfaceError, match=r"invalid argument \$1"):
        await sql.fetchval("select $1", object())
    with pytest.raises(driver.InterfaceError):
        driver.http.connect("mysql://x", endpoint=sqlp.url)


async def test_requests_share_one_kept_alive_connection(
    sql: driver.http.HTTPClient, sqlp: SQLProxy
) -> None:
    mark = sqlp.proc.mark()
    # Row counts no other test asks for pick this test's log lines out of the shared proxy's
    # (another test's request may still be logged after the mark).
    for i in (101, 102, 103):
        assert len(await sql.fetch("select generate_series(1, $1::int)", i)) == i
    await sqlp.proc.await_line(r"sql \d+ .*rows=103 ", start=mark)  # the last one is logged
    lines = [
        ln for ln in sqlp.proc.lines[mark:] if re.search(r" sql \d+ client=.* rows=10[123] ", ln)
    ]
    clients = {re.search(r"client=(\S+)", ln).group(1) for ln in lines}  # type: ignore[union-attr]
    assert len(lines) == 3 and len(clients) == 1, lines
    assert sum("backend=warm" in ln for ln in lines) >= 2


async def test_closed_client_refuses(sqlp: SQLProxy, pg: Cluster) -> None:
    client = driver.http.connect(pg.dsn("scram_user"), endpoint=sqlp.url)
    await client.close()
    with pytest.raises(driver.InterfaceError, match="closed"):
        await client.fetch("select 1")


async def test_unreachable_endpoint_is_a_transport_error(pg: Cluster) -> None:
    with refused_port() as port:
        url = f"http://127.0.0.1:{port}/sql"
        async with driver.http.connect(pg.dsn(), endpoint=url) as client:
            with pytest.raises(driver.TransportError):
                await client.fetch("select 1")


@pytest.mark.parametrize("http_client", ["aiohttp", "httpx"])
async def test_both_cpython_http_clients(http_client: str, sqlp: SQLProxy, pg: Cluster) -> None:
    """The default (aiohttp when installed) and httpx give the same answers and errors."""
    async with driver.http.connect(
        pg.dsn("scram_user"), endpoint=sqlp.url, http_client=http_client
    ) as client:
        rows = await client.fetch("select $1::int as a, $2::text as b", 7, "x")
        assert [tuple(r) for r in rows] == [(7, "x")]
        done = await client.transaction(["select 1", ("select $1::int", [2])], readonly=True)
        assert [r[0][0] for r in done] == [1, 2]
        with pytest.raises(driver.errors.DivisionByZero):
            await client.fetchval("select 1/0")
        poster = type(client._poster).__name__
    assert poster == {"aiohttp": "_AiohttpPoster", "httpx": "_HTTPXPoster"}[http_client]
    with refused_port() as port:
        url = f"http://127.0.0.1:{port}/sql"
        async with driver.http.connect(pg.dsn(), endpoint=url, http_client=http_client) as c:
            with pytest.raises(driver.TransportError):
                await c.fetch("select 1")
    with pytest.raises(driver.InterfaceError, match="http_client"):
        driver.http.connect(pg.dsn(), endpoint=url, http_client="curl")
