"""Every refusal: the upgrade gets 400/403/503 with a one-line reason, the refusal is logged
with the client address, and nothing reaches the target (a control connection through the
same proxy proves the target was reachable, so the zero count means something)."""

from __future__ import annotations

import asyncio

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from tests.proxy.conftest import ProxyProc, RawWS, Target


@pytest.fixture(scope="module")
def strict(tgt: Target) -> object:
    p = ProxyProc({"ALLOW_ADDR_REGEX": rf"127\.0\.0\.1:{tgt.port}"})
    yield p
    p.stop()


@pytest.fixture(scope="module")
def open_proxy(tgt: Target) -> object:
    p = ProxyProc({"ALLOW_ADDR_REGEX": ""})
    yield p
    p.stop()


@pytest.fixture(scope="module")
def denying(tgt: Target) -> object:
    p = ProxyProc(
        {
            "ALLOW_ADDR_REGEX": rf"(localhost|127\.0\.0\.2|\[::1\]):{tgt.port}",
            "DENY_NETWORKS": "127.0.0.1/32,::1/128",
        }
    )
    yield p
    p.stop()


GUARD = {"Origin": "https://app.example", "Authorization": "Bearer s3cret-token"}


@pytest.fixture(scope="module")
def guarded(tgt: Target) -> object:
    p = ProxyProc(
        {
            "ALLOW_ADDR_REGEX": rf"127\.0\.0\.1:{tgt.port}",
            "ALLOWED_ORIGINS": "https://app.example,https://other.example",
            "AUTH_TOKEN": "s3cret-token",
            "TRUSTED_PROXIES": "127.0.0.1/32",
            "MAX_CONNECTIONS": "3",
            "MAX_CONNECTIONS_PER_IP": "1",
        }
    )
    yield p
    p.stop()


async def _refused(
    proxy: ProxyProc,
    tgt: Target,
    query: str,
    status: int,
    reason: str,
    headers: dict[str, str] | None = None,
    control_host: str = "127.0.0.1",
) -> None:
    before, mark = tgt.count, proxy.mark()
    with pytest.raises(InvalidStatus) as info:
        async with connect(f"ws://127.0.0.1:{proxy.port}/v2{query}", additional_headers=headers):
            pass
    resp = info.value.response
    assert resp.status_code == status, resp.body
    assert reason in resp.body.decode() and resp.body.count(b"\n") == 1
    line = await proxy.await_line(r"refused client=127\.0\.0\.1:\d+", start=mark)
    assert f"status={status}" in line
    guard = GUARD if proxy.env.get("AUTH_TOKEN") else None
    await _control(proxy, tgt, host=control_host, headers=guard)
    assert tgt.count == before + 1, "the refused request reached the target"


async def _control(
    proxy: ProxyProc,
    tgt: Target,
    host: str = "127.0.0.1",
    headers: dict[str, str] | None = None,
) -> None:
    """An allowed relay through the same proxy: it must reach the target. Returns once the
    proxy has logged the relay's end, so its connection slot is free for the next test."""
    url = f"ws://127.0.0.1:{proxy.port}/v2?address={host}:{tgt.port}"
    mark = proxy.mark()
    async with connect(url, additional_headers=headers) as ws:
        _, writer = await tgt.next()
        await _echo_check(ws, writer)
        writer.close()
    await proxy.await_line(r"conn \d+ close client=", start=mark)


async def _echo_check(ws: ClientConnection, writer: object) -> None:
    writer.write(b"hello")  # type: ignore[attr-defined]
    assert await ws.recv() == b"hello"


MALFORMED = [
    ("", "missing address"),
    ("?address=", "missing target address"),
    ("?address=127.0.0.1", "missing port"),
    ("?address=127.0.0.1:", "port must be a number"),
    ("?address=127.0.0.1:abc", "port must be a number"),
    ("?address=127.0.0.1:-1", "port must be a number"),
    ("?address=127.0.0.1:0", "port out of range"),
    ("?address=127.0.0.1:65536", "port out of range"),
    ("?address=127.0.0.1:999999", "port must be a number"),
    ("?address=user@127.0.0.1:{port}", "no userinfo"),
    ("?address=user:pw%40127.0.0.1:{port}", "no userinfo"),
    ("?address=127.0.0.1:{port}/etc", "no userinfo, path"),
    ("?address=127.0.0.1:{port}&address=127.0.0.1:{port}", "several address"),
    ("?address=[::1:{port}", "bad IPv6 literal"),
    ("?address=[::g]:{port}", "bad IPv6 literal"),
    ("?address=[::1]{port}", "bad IPv6 literal"),
    ("?address=::1:{port}", "must be bracketed"),
    ("?address=127.0.0.1%0a:{port}", "host:port only"),
    ("?address=-bad-.host:{port}", "bad host name"),
]


@pytest.mark.parametrize(("query", "reason"), MALFORMED)
async def test_malformed_targets_get_400(
    strict: ProxyProc, tgt: Target, query: str, reason: str
) -> None:
    await _refused(strict, tgt, query.format(port=tgt.port), 400, reason)


async def test_regex_must_match_the_whole_target_not_a_substring(
    strict: ProxyProc, tgt: Target
) -> None:
    # Go's MatchString would let both through: the regex occurs inside each target.
    assert len(str(tgt.port)) >= 4
    shorter = ProxyProc({"ALLOW_ADDR_REGEX": rf"127\.0\.0\.1:{str(tgt.port)[:-1]}"})
    try:
        before = tgt.count
        with pytest.raises(InvalidStatus) as info:
            async with connect(shorter.url(f"127.0.0.1:{tgt.port}")):
                pass
        assert info.value.response.status_code == 403
        assert tgt.count == before
    finally:
        shorter.stop()
    await _refused(strict, tgt, f"?address=x127.0.0.1:{tgt.port}", 403, "not allowed")


async def test_target_outside_the_allow_list_gets_403(strict: ProxyProc, tgt: Target) -> None:
    await _refused(strict, tgt, f"?address=localhost:{tgt.port}", 403, "not allowed")
    await _refused(strict, tgt, f"?address=127.0.0.2:{tgt.port}", 403, "not allowed")


def test_default_allow_list_is_local_postgres_only() -> None:
    p = ProxyProc({})
    try:
        assert r"(localhost|127\.0\.0\.1|\[::1\]):5432" in p.log
        assert "ANY host" not in p.log
    finally:
        p.stop()


async def test_empty_regex_allows_all_with_a_loud_warning(
    open_proxy: ProxyProc, tgt: Target
) -> None:
    assert "WARNING" in open_proxy.log and "ANY host:port" in open_proxy.log
    await _control(open_proxy, tgt)
    await _control(open_proxy, tgt, host="127.0.0.2")


@pytest.mark.parametrize(
    "address",
    ["169.254.169.254", "169.254.0.1", "[fe80::1]", "[fd00:ec2::254]", "[::ffff:169.254.169.254]"],
)
async def test_metadata_and_link_local_targets_are_refused_even_when_open(
    open_proxy: ProxyProc, tgt: Target, address: str
) -> None:
    await _refused(open_proxy, tgt, f"?address={address}:{tgt.port}", 403, "denied address")


async def test_deny_check_is_made_on_resolved_addresses(denying: ProxyProc, tgt: Target) -> None:
    # "localhost" passes the regex but resolves only to denied addresses.
    for host in ("localhost", "[::1]"):
        q = f"?address={host}:{tgt.port}"
        await _refused(denying, tgt, q, 403, "denied address", control_host="127.0.0.2")


async def test_origin_is_checked(guarded: ProxyProc, tgt: Target) -> None:
    q = f"?address=127.0.0.1:{tgt.port}"
    token = {"Authorization": GUARD["Authorization"]}
    await _refused(guarded, tgt, q, 403, "origin not allowed", token)
    await _refused(guarded, tgt, q, 403, "origin not allowed", {**token, "Origin": "https://evil"})
    await _control(guarded, tgt, headers={**token, "Origin": "https://other.example"})


async def test_token_is_required_in_header_or_query(guarded: ProxyProc, tgt: Target) -> None:
    q = f"?address=127.0.0.1:{tgt.port}"
    origin = {"Origin": GUARD["Origin"]}
    await _refused(guarded, tgt, q, 403, "wrong token", origin)
    await _refused(guarded, tgt, q, 403, "wrong token", {**origin, "Authorization": "Bearer no"})
    await _refused(guarded, tgt, q + "&token=nope", 403, "wrong token", origin)
    url = f"ws://127.0.0.1:{guarded.port}/v2{q}&token=s3cret-token"
    mark = guarded.mark()
    async with connect(url, additional_headers=origin) as ws:
        _, writer = await tgt.next()
        await _echo_check(ws, writer)
    await guarded.await_line(r"conn \d+ close client=", start=mark)  # its slot is free again
    assert "s3cret-token" not in guarded.log


async def test_connection_limits_answer_503(guarded: ProxyProc, tgt: Target) -> None:
    """Per-IP limit keyed on X-Forwarded-For (peer is trusted), then the global limit."""
    q = f"?address=127.0.0.1:{tgt.port}"
    url = f"ws://127.0.0.1:{guarded.port}/v2{q}"
    held = []

    async def hold(ip: str) -> None:
        ws = await connect(url, additional_headers={**GUARD, "X-Forwarded-For": ip})
        held.append((ws, (await tgt.next())[1]))

    async def refused(xff: str, reason: str) -> None:
        with pytest.raises(InvalidStatus) as info:
            await connect(url, additional_headers={**GUARD, "X-Forwarded-For": xff})
        assert info.value.response.status_code == 503
        assert info.value.response.body.decode() == reason + "\n"

    await hold("10.0.0.1")
    await hold("10.0.0.2")
    line = await guarded.await_line(r"conn \d+ open client=10\.0\.0\.2 \(via 127\.0\.0\.1:\d+\)")
    assert "target=127.0.0.1:" in line
    before = tgt.count
    await refused("10.0.0.1", "too many connections from your address")
    # A spoofed left-most entry is ignored: the right-most untrusted hop is the client.
    await refused("10.0.0.9, 10.0.0.1", "too many connections from your address")
    await hold("10.0.0.3")
    await refused("10.0.0.9", "too many connections")
    before += 1
    assert tgt.count == before
    mark = guarded.mark()
    ws0, w0 = held.pop(0)
    await ws0.close()
    await guarded.await_line(r"conn \d+ close client=10\.0\.0\.1 ", start=mark)
    async with connect(url, additional_headers={**GUARD, "X-Forwarded-For": "10.0.0.1"}) as ws:
        _, writer = await tgt.next()
        await _echo_check(ws, writer)
    for ws, w in held:
        await ws.close()
        w.close()
    w0.close()


async def test_host_header_target_with_append_port(tgt: Target) -> None:
    p = ProxyProc(
        {
            "USE_HOST_HEADER": "true",
            "APPEND_PORT": f":{tgt.port}",
            "ALLOW_ADDR_REGEX": rf"localhost:{tgt.port}",
        }
    )
    try:
        before = tgt.count
        status, _, raw = await RawWS.connect(p.port, "/v2", host="localhost")
        assert status == 101
        _, writer = await tgt.next()
        writer.write(b"via host header")
        assert await raw.read_frame() == (2, b"via host header")
        raw.close()
        status, resp, raw = await RawWS.connect(p.port, "/v2", host="db.example")
        assert status == 403 and b"not allowed" in await raw.reader.read(100)
        raw.close()
        status, resp, raw = await RawWS.connect(p.port, "/v2", host="localhost:1")
        assert status == 400, resp  # "localhost:1:PORT" is not host:port
        raw.close()
        assert tgt.count == before + 1
    finally:
        p.stop()


async def test_non_upgrade_requests_are_refused(strict: ProxyProc, tgt: Target) -> None:
    import httpx

    before = tgt.count
    async with httpx.AsyncClient() as client:
        r = await client.get(f"http://127.0.0.1:{strict.port}/v2?address=127.0.0.1:{tgt.port}")
    assert r.status_code == 426 and "WebSocket upgrade expected" in r.text
    await _control(strict, tgt)
    assert tgt.count == before + 1


async def test_refused_clients_do_not_hold_connection_slots(tgt: Target) -> None:
    """Clients refused after the slot check (denied address) give their slot back at once,
    even while they keep their sockets open."""
    p = ProxyProc(
        {
            "ALLOW_ADDR_REGEX": rf"(localhost|127\.0\.0\.2):{tgt.port}",
            "DENY_NETWORKS": "127.0.0.1/32,::1/128",
            "MAX_CONNECTIONS": "1",
        }
    )
    held = []
    try:
        for _ in range(3):
            status, _, raw = await RawWS.connect(p.port, f"/v2?address=localhost:{tgt.port}")
            assert status == 403
            held.append(raw)  # not closed: the socket stays open
        await _control(p, tgt, host="127.0.0.2")
    finally:
        for raw in held:
            raw.close()
        p.stop()


# Each spelling reaches (or would reach, through a translator) an address no relay should:
# the open proxy (allow-all regex, default ALLOW_SPECIAL_NETWORKS) refuses every one with 403.
SPECIAL_TARGETS = [
    "0.0.0.0",  # "this host": connects to local services
    "[::]",
    "[::ffff:127.0.0.1]",  # IPv4-mapped: the wrapper is not listed, though loopback is
    "[::ffff:169.254.169.254]",
    "[::a9fe:a9fe]",  # IPv4-compatible 169.254.169.254
    "[::7f00:1]",  # IPv4-compatible 127.0.0.1
    "[64:ff9b::a9fe:a9fe]",  # NAT64
    "[64:ff9b:1::a9fe:a9fe]",  # local-use NAT64
    "[2002:a9fe:a9fe::1]",  # 6to4
    "[2001:0:4136:e378:8000:63bf:3fff:fdd2]",  # Teredo
    "[fd00::1]",  # unique-local
    "[fc00::1]",
    "[fe80::1]",  # link-local
    "169.254.169.254",
    "100.100.100.200",  # CGNAT-space metadata endpoint
    "100.64.0.1",
    "192.0.0.8",
    "192.0.2.1",  # documentation
    "198.18.0.1",  # benchmarking
    "240.0.0.1",  # reserved
    "255.255.255.255",
    "224.0.0.1",  # multicast
    "[ff02::1]",
    "[2001:db8::1]",
    "[100::1]",
]


@pytest.mark.parametrize("address", SPECIAL_TARGETS)
async def test_special_purpose_addresses_are_refused_under_an_allow_all_regex(
    open_proxy: ProxyProc, tgt: Target, address: str
) -> None:
    await _refused(open_proxy, tgt, f"?address={address}:{tgt.port}", 403, "denied address")


async def test_loopback_is_refused_when_not_excepted(tgt: Target) -> None:
    """With ALLOW_SPECIAL_NETWORKS empty nothing special is reached, whatever the spelling;
    naming a range (here the IPv4-mapped wrapper and loopback) lets exactly that through."""
    closed = ProxyProc({"ALLOW_ADDR_REGEX": ".*", "ALLOW_SPECIAL_NETWORKS": ""})
    mapped = ProxyProc(
        {"ALLOW_ADDR_REGEX": ".*", "ALLOW_SPECIAL_NETWORKS": "::ffff:0:0/96,127.0.0.0/8"}
    )
    try:
        before = tgt.count
        for host in ("127.0.0.1", "127.0.0.2", "localhost", "[::1]", "0.0.0.0", "[::]"):
            with pytest.raises(InvalidStatus) as info:
                async with connect(closed.url(f"{host}:{tgt.port}")):
                    pass
            assert info.value.response.status_code == 403, host
            assert b"denied address" in info.value.response.body
        assert tgt.count == before
        await _control(mapped, tgt, host="[::ffff:127.0.0.1]")
        assert tgt.count == before + 1
    finally:
        closed.stop()
        mapped.stop()


async def test_duplicate_host_headers_get_400_with_a_reason(tgt: Target) -> None:
    p = ProxyProc({"USE_HOST_HEADER": "true", "ALLOW_ADDR_REGEX": rf"localhost:{tgt.port}"})
    try:
        before = tgt.count
        reader, writer = await asyncio.open_connection("127.0.0.1", p.port)
        host = f"Host: localhost:{tgt.port}\r\n"
        writer.write(
            (
                f"GET /v2 HTTP/1.1\r\n{host}{host}Upgrade: websocket\r\nConnection: Upgrade\r\n"
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = await reader.readuntil(b"\r\n\r\n")
        body = await reader.read(200)
        writer.close()
        assert head.startswith(b"HTTP/1.1 400 "), head
        assert b"exactly one Host header" in body
        await p.await_line(r"refused client=127\.0\.0\.1:\d+ status=400")
        assert tgt.count == before
    finally:
        p.stop()  # also asserts no traceback reached the log
