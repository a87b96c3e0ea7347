"""Round trips of connect + authenticate + first result, counted by a relay (never timed):
issue 4's targets, as upper bounds that fail when a round trip is added.

Counted after the TCP connect; the WebSocket upgrade is one. Each client flight must also be
one WebSocket message (one write), TLS flights included.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

import driver
from driver.connect import forget_auth_methods
from tests.conftest import ProxyProcess
from tools.pgbouncer import Bouncer
from tools.pgcluster import Cluster
from tools.relay import CountingRelay, RelayedConnection

WS, TCP = "ws", "tcp"


@pytest.fixture(autouse=True)
def _fresh_methods() -> Iterator[None]:
    """Each test starts knowing no server's authentication method."""
    forget_auth_methods()
    yield
    forget_auth_methods()


def _args(pg: Cluster, relay: CountingRelay, transport: str, **kw: Any) -> dict[str, Any]:
    args: dict[str, Any] = {"sslmode": "disable", **kw}
    if transport == WS:
        args.update(ws_proxy=f"127.0.0.1:{relay.port}/v2", use_secure_websocket=False)
    else:
        args.update(port=relay.port)
    return args


async def _first_result(pg: Cluster, relay: CountingRelay, transport: str, role: str,
                        **kw: Any) -> RelayedConnection:
    """connect + first query through ``relay``; the relayed connection, counted before close."""
    before = len(relay.connections)
    conn = await driver.connect(pg.dsn(role), **_args(pg, relay, transport, **kw))
    try:
        assert await conn.fetchval("select $1::int + 1", 41) == 42
        assert len(relay.connections) == before + 1  # no reconnect hidden in the count
        counted = relay.last()
        counted.final = counted.round_trips  # type: ignore[attr-defined]
        if transport == WS:  # one flight = one WebSocket message, upgrade request apart
            assert all(msgs == 1 for _, msgs in counted.up_flights()[1:]), counted.flights
        else:
            assert counted.round_trips == len(counted.up_flights())
    finally:
        await conn.close()
    return counted


TLS = {"sslmode": "verify-full"}
PIPELINED = {"wait_ready": False}
CLEAR_OPT_IN = {"allow_unencrypted_password": True, "pipeline_connect": "password"}

# (transport, role, options, issue 4's target)
TARGETS = [
    pytest.param(WS, "trust_user", {}, 2, id="ws-trust"),
    pytest.param(WS, "clear_user", CLEAR_OPT_IN, 2, id="ws-cleartext-opt-in"),
    pytest.param(WS, "clear_user", {**TLS, "pipeline_connect": "password"}, 4,
                 id="ws-tls-cleartext"),
    pytest.param(WS, "scram_user", {}, 3, id="ws-scram"),
    pytest.param(WS, "scram_user", TLS, 5, id="ws-tls13-scram-plus"),
    pytest.param(TCP, "scram_user", {}, 2, id="tcp-scram"),
    pytest.param(TCP, "trust_user", {}, 1, id="tcp-trust"),
    pytest.param(TCP, "scram_user", TLS, 4, id="tcp-tls13-scram-plus"),
]


@pytest.mark.parametrize(("transport", "role", "options", "target"), TARGETS)
async def test_first_result_within_the_target(pg: Cluster, proxy: ProxyProcess, transport: str,
                                              role: str, options: dict[str, Any],
                                              target: int) -> None:
    assert pg.certs is not None
    if options.get("sslmode") == "verify-full":
        options = {**options, "sslrootcert": str(pg.certs.ca_cert)}
    async with CountingRelay("127.0.0.1", proxy.port if transport == WS else pg.port) as relay:
        counted = await _first_result(pg, relay, transport, role, **PIPELINED, **options)
    assert counted.final <= target, counted.flights  # type: ignore[attr-defined]


@pytest.mark.parametrize(("transport", "role", "options", "target"), [
    pytest.param(WS, "trust_user", {}, 3, id="ws-trust"),
    pytest.param(WS, "scram_user", {}, 4, id="ws-scram"),
    pytest.param(TCP, "scram_user", {}, 3, id="tcp-scram"),
])
async def test_a_confirmed_connect_costs_exactly_one_more(
        pg: Cluster, proxy: ProxyProcess, transport: str, role: str, options: dict[str, Any],
        target: int) -> None:
    """wait_ready=True (asyncpg's contract, the default) still sends SCRAM client-first with
    the startup message; only the first query waits for ReadyForQuery."""
    async with CountingRelay("127.0.0.1", proxy.port if transport == WS else pg.port) as relay:
        counted = await _first_result(pg, relay, transport, role, wait_ready=True, **options)
    assert counted.final == target, counted.flights  # type: ignore[attr-defined]


@pytest.mark.parametrize(("role", "first", "later"), [
    ("clear_user", None, 2),  # learned: a password the policy allows is then sent early
    ("md5_user", None, 3),  # an MD5 answer needs the server's salt: one exchange more
    ("trust_user", None, 2),  # trust, though a password was given
])
async def test_the_method_is_learned_after_one_mispredicted_connect(
        pg: Cluster, proxy: ProxyProcess, role: str, first: None, later: int) -> None:
    """SCRAM is predicted by default; another method ends that session (the server reads our
    client-first as its answer), the driver reconnects once, then predicts right."""
    kw: dict[str, Any] = {"allow_unencrypted_password": True, **PIPELINED}
    if role == "trust_user":
        kw["password"] = "not needed"
    async with CountingRelay("127.0.0.1", proxy.port) as relay:
        conn = await driver.connect(pg.dsn(role), **_args(pg, relay, WS, **kw))
        assert await conn.fetchval("select current_user") == role
        await conn.close()
        assert len(relay.connections) == 2  # the mispredicted one, then the right one
        assert b"SCRAM-SHA-256\0" in relay.connections[0].ws_up.messages[0]
        counted = await _first_result(pg, relay, WS, role, **kw)
    assert counted.final <= later, counted.flights  # type: ignore[attr-defined]


async def test_pipeline_connect_false_sends_nothing_unasked(pg: Cluster,
                                                            proxy: ProxyProcess) -> None:
    async with CountingRelay("127.0.0.1", proxy.port) as relay:
        counted = await _first_result(pg, relay, WS, "scram_user", pipeline_connect=False)
    assert counted.final == 5  # upgrade, startup, client-first, client-final, query
    first = counted.ws_up.messages[0]
    assert first[4:8] == (196608).to_bytes(4, "big") and len(first) == int.from_bytes(
        first[:4], "big")  # the StartupMessage alone


async def test_the_deferred_flush_sends_the_last_auth_message_without_an_operation(
        pg: Cluster, proxy: ProxyProcess) -> None:
    """connect(wait_ready=False) leaves client-final queued; if no operation takes it along,
    it leaves by itself, so authentication never waits on an idle caller."""
    async with CountingRelay("127.0.0.1", proxy.port) as relay:
        conn = await driver.connect(pg.dsn("scram_user"),
                                    **_args(pg, relay, WS, wait_ready=False))  # fmt: skip
        relayed = relay.last()
        sent = asyncio.Event()
        record = relayed.record

        def watch(direction: str, data: bytes) -> None:
            record(direction, data)
            if direction == "down" and b"R\0\0\0\x08\0\0\0\0" in bytes(relayed.down):
                sent.set()  # AuthenticationOk came back: client-final went out alone

        relayed.record = watch  # type: ignore[method-assign]
        try:
            await asyncio.wait_for(sent.wait(), 10)
            assert len(relayed.ws_up.messages) == 2  # startup + client-first, client-final
            await conn.ready()
            assert conn.get_server_pid() is not None
            assert await conn.fetchval("select 1") == 1
        finally:
            await conn.close()


@pytest.mark.parametrize(("role", "options", "target"), [
    pytest.param("scram_user", {}, 2, id="scram"),
    pytest.param("trust_user", {}, 1, id="trust"),
    pytest.param("scram_user", {"sslmode": "require"}, 4, id="tls-scram"),
])
async def test_through_pgbouncer(pg: Cluster, pgbouncer: Bouncer, role: str,
                                 options: dict[str, Any], target: int) -> None:
    """PgBouncer speaks its own start-up (and offers no SCRAM-SHA-256-PLUS over TLS): a
    first connect may mispredict and reconnect once, then the learned method holds."""
    async with CountingRelay("127.0.0.1", pgbouncer.port) as relay:
        kw: dict[str, Any] = {"port": relay.port, "statement_cache_size": 0, **PIPELINED,
                              "sslmode": "disable", **options}
        for _ in range(2):
            before = len(relay.connections)
            conn = await driver.connect(pgbouncer.dsn(role), **kw)
            try:
                assert await conn.fetchval("select current_user") == role
                counted = relay.last().round_trips
            finally:
                await conn.close()
    assert len(relay.connections) - before == 1  # the second connect: no reconnect
    assert counted <= target, relay.last().flights
