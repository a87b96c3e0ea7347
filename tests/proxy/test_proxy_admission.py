"""Fair admission: idle relays from a few addresses cannot fill the proxy.

Clients bind their sockets to different loopback addresses (all of 127.0.0.0/8 is local on
Linux), so the proxy sees many sources and networks without leaving the machine.
"""

from __future__ import annotations

import re

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from proxy.admission import Limits, network_of
from proxy.target import Refused
from tests.proxy.conftest import ProxyProc, Target


async def _open(p: ProxyProc, tgt: Target, source: str) -> ClientConnection:
    ws = await connect(p.url(f"127.0.0.1:{tgt.port}"), local_addr=(source, 0))
    await tgt.next()  # the relay reached the target: it holds a slot
    return ws


async def _refusal(p: ProxyProc, tgt: Target, source: str) -> str:
    with pytest.raises(InvalidStatus) as info:
        await connect(p.url(f"127.0.0.1:{tgt.port}"), local_addr=(source, 0))
    assert info.value.response.status_code == 503
    return info.value.response.body.decode().strip()


async def test_idle_relays_from_twenty_addresses_leave_room_for_new_ones(target: Target) -> None:
    """Before: 1,000 idle relays from 20 addresses filled MAX_CONNECTIONS. Here 20 addresses
    in four /24s open idle relays until refused; the reserve still admits new networks."""
    p = ProxyProc(
        {
            "ALLOW_ADDR_REGEX": rf"127\.0\.0\.1:{target.port}",
            "MAX_CONNECTIONS": "60",
            "MAX_CONNECTIONS_PER_NET": "30",
            "RESERVED_CONNECTIONS": "10%",
            "LOG_CONN_INFO": "false",
        }
    )
    held: list[ClientConnection] = []
    try:
        sources = [f"127.0.{net}.{host}" for net in range(1, 5) for host in range(2, 7)]
        refusals: dict[str, int] = {}
        for _round in range(8):  # every source tries eight relays, round-robin
            for source in sources:
                try:
                    held.append(await _open(p, target, source))
                except InvalidStatus as exc:
                    reason = exc.response.body.decode().strip()
                    refusals[reason] = refusals.get(reason, 0) + 1
        assert len(held) == 60 - 6, (len(held), refusals)
        assert set(refusals) == {"too many connections"}, refusals
        # Networks that hold nothing get the reserved slots, one relay each.
        for net in range(9, 15):
            held.append(await _open(p, target, f"127.0.{net}.2"))
        assert await _refusal(p, target, "127.0.20.2") == "too many connections"
        assert await _refusal(p, target, "127.0.9.3") == "too many connections"
    finally:
        for ws in held:
            await ws.close()
        p.stop()


async def test_per_address_and_per_network_caps(target: Target) -> None:
    p = ProxyProc(
        {
            "ALLOW_ADDR_REGEX": rf"127\.0\.0\.1:{target.port}",
            "MAX_CONNECTIONS_PER_IP": "3",
            "MAX_CONNECTIONS_PER_NET": "5",
        }
    )
    held: list[ClientConnection] = []
    try:
        held += [await _open(p, target, "127.0.5.2") for _ in range(3)]
        assert await _refusal(p, target, "127.0.5.2") == "too many connections from your address"
        held += [await _open(p, target, "127.0.5.3") for _ in range(2)]
        assert await _refusal(p, target, "127.0.5.4") == "too many connections from your network"
        held.append(await _open(p, target, "127.0.6.2"))  # another /24 is not affected
        line = await p.await_line(r"refused client=127\.0\.5\.4:\d+ status=503")
        assert "from your network" in line
    finally:
        for ws in held:
            await ws.close()
        p.stop()


async def test_a_relay_whose_client_sends_nothing_is_closed(target: Target) -> None:
    p = ProxyProc({"ALLOW_ADDR_REGEX": rf"127\.0\.0\.1:{target.port}", "NO_TRAFFIC_TIMEOUT": "1s"})
    try:
        silent = await connect(p.url(f"127.0.0.1:{target.port}"))
        await target.next()
        talking = await connect(p.url(f"127.0.0.1:{target.port}"))
        _, writer = await target.next()
        await talking.send(b"\0")
        line = await p.await_line(r"reason=no traffic from the client code=1000", within=15)
        duration = float(re.search(r"duration=([\d.]+)s", line).group(1))  # type: ignore[union-attr]
        assert duration >= 1.0, line
        assert "tcp->ws=0 " in line and "ws->tcp=0 " in line
        await silent.wait_closed()
        assert silent.close_code == 1000
        # The relay that carried a byte is still open and relaying.
        writer.write(b"still here")
        assert await talking.recv() == b"still here"
        assert p.log.count("no traffic") == 1
        await talking.close()
        writer.close()
    finally:
        p.stop()


def test_networks_are_a_slash_24_or_a_slash_64() -> None:
    assert network_of("192.0.2.77") == "192.0.2.0/24"
    assert network_of("::ffff:192.0.2.77") == "192.0.2.0/24"
    assert network_of("2001:db8:1:2:aaaa::1") == "2001:db8:1:2::/64"
    assert network_of("not-an-ip") == "not-an-ip"


def test_limits_keep_the_reserve_for_new_networks_and_give_slots_back() -> None:
    limits = Limits(total=4, per_ip=0, per_net=0, reserve=2)
    for ip in ("2001:db8:1:2::1", "2001:db8:1:2::2"):  # one /64
        limits.acquire(ip)
    with pytest.raises(Refused) as info:
        limits.acquire("2001:db8:1:2::3")
    assert info.value.label == "reserve"
    limits.acquire("2001:db8:1:3::1")  # another /64
    limits.acquire("192.0.2.1")
    with pytest.raises(Refused) as info:
        limits.acquire("198.51.100.1")
    assert info.value.label == "max_connections"
    for ip in ("2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:3::1", "192.0.2.1"):
        limits.release(ip)
    assert limits.total == 0 and not limits.by_ip and not limits.by_net
