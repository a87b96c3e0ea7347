"""The happy path through the real proxy process to the real cluster: bytes both ways."""

from __future__ import annotations

import struct

import httpx
from websockets.asyncio.client import connect

from tests.proxy.conftest import pg_query, pg_startup
from tools.pgcluster import Cluster


def _messages(data: bytes) -> list[tuple[str, bytes]]:
    out, i = [], 0
    while i + 5 <= len(data):
        (n,) = struct.unpack("!I", data[i + 1 : i + 5])
        out.append((chr(data[i]), data[i + 5 : i + 1 + n]))
        i += 1 + n
    assert i == len(data), "stream ended inside a message"
    return out


async def _until_ready(ws: object) -> bytes:
    """Collect backend bytes until ReadyForQuery ('Z', length 5) ends the stream so far."""
    buf = b""
    while not (len(buf) >= 6 and buf[-6:-1] == b"Z\x00\x00\x00\x05"):
        buf += await ws.recv()  # type: ignore[attr-defined]
    return buf


async def test_query_round_trip_through_the_proxy(pg: Cluster, proxy: object) -> None:
    url = f"{proxy.url}?address=127.0.0.1:{pg.port}"  # type: ignore[attr-defined]
    async with connect(url, compression=None) as ws:
        await ws.send(pg_startup("trust_user"))
        msgs = _messages(await _until_ready(ws))
        assert msgs[0] == ("R", b"\0\0\0\0")  # AuthenticationOk: trust
        await ws.send(pg_query("select 6 * 7, current_user"))
        rows = [m for m in _messages(await _until_ready(ws)) if m[0] == "D"]
        assert len(rows) == 1 and b"42" in rows[0][1] and b"trust_user" in rows[0][1]


async def test_localhost_name_and_ipv6_literal_targets_work(pg: Cluster, proxy: object) -> None:
    for host in ("localhost", "[::1]"):
        async with connect(f"{proxy.url}?address={host}:{pg.port}") as ws:  # type: ignore[attr-defined]
            await ws.send(pg_startup("trust_user"))
            assert (await _until_ready(ws)).startswith(b"R\0\0\0\x08\0\0\0\0")


async def test_any_path_is_accepted_like_v1_and_v2(pg: Cluster, proxy: object) -> None:
    for path in ("/v1", "/v2", "/", "/anything/else"):
        url = f"ws://127.0.0.1:{proxy.port}{path}?address=127.0.0.1:{pg.port}"  # type: ignore[attr-defined]
        async with connect(url) as ws:
            await ws.send(pg_startup("trust_user"))
            assert b"Z\0\0\0\x05I" in await _until_ready(ws)


async def test_subprotocol_binary_or_none_is_accepted(pg: Cluster, proxy: object) -> None:
    url = f"{proxy.url}?address=127.0.0.1:{pg.port}"  # type: ignore[attr-defined]
    async with connect(url, subprotocols=["binary"]) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == "binary"
    async with connect(url) as ws:
        assert ws.subprotocol is None


async def test_healthz_answers_without_upgrading(proxy: object) -> None:
    async with httpx.AsyncClient() as client:
        r = await client.get(f"http://127.0.0.1:{proxy.port}/healthz")  # type: ignore[attr-defined]
    assert r.status_code == 200 and r.text == "ok\n"
