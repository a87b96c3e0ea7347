"""The listening side: admission before the upgrade, a relay per connection, graceful drain."""

from __future__ import annotations

import asyncio
import itertools
import logging
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from http import HTTPStatus
from urllib.parse import urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from .admission import (
    Limits,
    check_origin,
    check_token,
    check_upgrade,
    client_ip,
    query_of,
    requested_target,
)
from .config import Config
from .metrics import Metrics
from .relay import GOING_AWAY, INTERNAL_ERROR, Relay, RelayConnection
from .target import Refused, Target, resolve
from .traffic import TrafficLog
from .upstream import UpstreamError, open_upstream

log = logging.getLogger("proxy")

# High-water mark of each WebSocket's write buffer: ws.send() waits above it, which is what
# pauses reading from Postgres when the client is slow.
WS_WRITE_LIMIT = 1 << 20
# Client frames buffered before websockets stops reading the socket (each <= max_size).
WS_MAX_QUEUE = 4


@dataclass(frozen=True, slots=True)
class Admission:
    """What process_request decided, handed to the connection handler."""

    conn_id: int
    client: str
    target: Target
    ips: list[str]


def _select_subprotocol(
    _conn: ServerConnection, offered: Sequence[Subprotocol]
) -> Subprotocol | None:
    """Accept no subprotocol or "binary" (websockify clients offer it); others get none."""
    return Subprotocol("binary") if "binary" in offered else None


def _peer(conn: ServerConnection) -> tuple[str, str]:
    addr = conn.remote_address
    host, port = (str(addr[0]), str(addr[1])) if addr else ("?", "?")
    return host, (f"[{host}]:{port}" if ":" in host else f"{host}:{port}")


class ProxyServer:
    """Owns the websockets server, the limits and the set of live relays."""

    def __init__(self, cfg: Config, metrics: Metrics | None = None) -> None:
        self.cfg = cfg
        self.metrics = metrics or Metrics()
        self.limits = Limits(
            cfg.max_connections,
            cfg.max_connections_per_ip,
            cfg.max_connections_per_net,
            cfg.reserved_connections,
        )
        self.relays: set[Relay] = set()
        self.metrics.track_buffered(
            self.buffered, lambda: max((r.buffered() for r in self.relays), default=0)
        )
        self._ids = itertools.count(1)
        self._admitted: dict[ServerConnection, Admission] = {}
        self._holding: dict[ServerConnection, str] = {}  # connection -> client IP holding a slot
        self._server: Server | None = None

    def buffered(self) -> int:
        """Bytes all relays hold in buffers now (O(relays); read per upgrade and per scrape)."""
        return sum(relay.buffered() for relay in self.relays)

    def _ssl_context(self) -> ssl.SSLContext | None:
        if not self.cfg.tls_cert:
            return None
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.cfg.tls_cert, self.cfg.tls_key)
        return ctx

    async def start(self) -> list[str]:
        """Bind and start accepting.

        Returns:
            The bound addresses as host:port strings, for the "listening" log line.
        """
        cfg = self.cfg
        self._server = await serve(
            self._handler,
            host=cfg.listen_host or None,
            port=cfg.listen_port,
            ssl=self._ssl_context(),
            process_request=self._process_request,
            create_connection=RelayConnection,
            select_subprotocol=_select_subprotocol,
            compression=None,  # Postgres bytes; deflate would only cost CPU
            max_size=cfg.max_message_size or None,
            max_queue=WS_MAX_QUEUE,
            write_limit=WS_WRITE_LIMIT,
            ping_interval=cfg.ping_interval or None,
            ping_timeout=cfg.ping_interval or None,
            open_timeout=cfg.handshake_timeout or None,
            close_timeout=5,
            server_header="wsproxy",
        )
        addrs = []
        for sock in self._server.sockets:
            host, port = sock.getsockname()[:2]
            addrs.append(f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
        return addrs

    def _refuse(self, conn: ServerConnection, client: str, exc: Refused, asked: str) -> Response:
        self.metrics.refusals.labels(reason=exc.label).inc()
        log.warning(
            "refused client=%s status=%d reason=%r target=%r",
            client,
            exc.status,
            exc.reason,
            asked[:200],
        )
        return conn.respond(HTTPStatus(exc.status), exc.reason + "\n")

    async def _process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        """Every refusal happens here, before the upgrade and before any upstream connect."""
        cfg, headers = self.cfg, request.headers
        if urlsplit(request.path).path == "/healthz":
            return conn.respond(HTTPStatus.OK, "ok\n")
        peer_ip, peer = _peer(conn)
        ip = client_ip(peer_ip, headers, cfg.trusted_proxies)
        client = peer if ip == peer_ip else f"{ip} (via {peer})"
        asked = _asked(request.path, headers, cfg.use_host_header)
        try:
            check_upgrade(headers)
            query = query_of(request.path)
            check_origin(headers, cfg.allowed_origins)
            check_token(headers, query, cfg.auth_token)
            target = requested_target(query, headers, cfg)
            if cfg.memory_budget and self.buffered() > cfg.memory_budget:
                raise Refused(503, "proxy is busy (memory budget)", "memory_budget")
            self.limits.acquire(ip)
        except Refused as exc:
            return self._refuse(conn, client, exc, asked)
        # The slot is held until the relay's close is logged, or this connection's task ends
        # however it ends (a failed handshake), whichever comes first.
        self._holding[conn] = ip
        task = asyncio.current_task()
        assert task is not None
        task.add_done_callback(lambda _t: self._release(conn))
        try:
            ips = await resolve(
                target, cfg.deny_networks, cfg.connect_timeout, cfg.allow_special_networks
            )
        except Refused as exc:
            # Free the slot now: a refused client may hold its socket open for a while.
            self._release(conn)
            return self._refuse(conn, client, exc, asked)
        self._admitted[conn] = Admission(next(self._ids), client, target, ips)
        return None

    def _release(self, conn: ServerConnection) -> None:
        """Free the connection's slot; safe to call more than once."""
        ip = self._holding.pop(conn, None)
        if ip is not None:
            self.limits.release(ip)
        self._admitted.pop(conn, None)

    async def _handler(self, ws: ServerConnection) -> None:
        adm = self._admitted.pop(ws)
        cfg, m = self.cfg, self.metrics
        m.connections.inc()
        m.active.inc()
        loop = asyncio.get_running_loop()
        started = loop.time()
        dest = f"{adm.target.text} ({', '.join(adm.ips)})"
        if cfg.log_conn_info:
            log.info("conn %d open client=%s target=%s", adm.conn_id, adm.client, dest)
        relay: Relay | None = None
        try:
            try:
                upstream = await open_upstream(adm.ips, adm.target.port, cfg.connect_timeout)
            except UpstreamError as exc:
                m.connect_failures.inc()
                reason = f"upstream connect failed: {exc}"
                await ws.close(INTERNAL_ERROR, reason[:120])
                ending_reason, sent_up, sent_down = reason, 0, 0
            else:
                traffic = TrafficLog(adm.conn_id, log) if cfg.log_traffic else None
                assert isinstance(ws, RelayConnection)  # serve(create_connection=...)
                relay = Relay(
                    adm.conn_id,
                    ws,
                    upstream,
                    m,
                    cfg.idle_timeout,
                    traffic,
                    cfg.no_traffic_timeout,
                )
                self.relays.add(relay)
                try:
                    ending = await relay.run()
                finally:
                    upstream.close()
                code = f" code={ending.code}" if ending.code is not None else ""
                ending_reason = f"{ending.reason}{code}"
                sent_up, sent_down = relay.bytes_from_client, relay.bytes_from_server
        finally:
            if relay is not None:
                self.relays.discard(relay)
            self._release(ws)  # before the close line: once it is logged, the slot is free
            m.active.dec()
            duration = loop.time() - started
            m.duration.observe(duration)
        if cfg.log_conn_info:
            log.info(
                "conn %d close client=%s target=%s ws->tcp=%d tcp->ws=%d duration=%.3fs reason=%s",
                adm.conn_id,
                adm.client,
                dest,
                sent_up,
                sent_down,
                duration,
                ending_reason,
            )

    async def shutdown(self, drain_timeout: float) -> None:
        """Stop accepting, let relays finish for `drain_timeout`, then close the rest with 1001."""
        if self._server is None:
            return
        server = self._server
        server.server.close()  # stop listening now: Server.close() only schedules it
        server.close(close_connections=False)
        pending = [asyncio.ensure_future(server.wait_closed())]
        log.info(
            "draining %d active connection(s) for up to %.1fs",
            len(server.connections),
            drain_timeout,
        )
        done, _ = await asyncio.wait(pending, timeout=drain_timeout)
        if not done:
            log.info("drain timeout: closing %d connection(s) with 1001", len(server.connections))
            for relay in list(self.relays):
                relay.stop(GOING_AWAY, "server shutting down")
            # Connections still upgrading or connecting upstream are not relays yet.
            relaying = {relay.ws for relay in self.relays}
            closing = [
                asyncio.ensure_future(conn.close(GOING_AWAY, "server shutting down"))
                for conn in server.connections - relaying
            ]
            await asyncio.gather(pending[0], *closing, return_exceptions=True)
        log.info("stopped")


def _asked(path: str, headers: Headers, use_host_header: bool) -> str:
    """The raw requested target, for refusal logs only."""
    if use_host_header:  # get_all: Headers.get raises when the header is repeated
        return ",".join(headers.get_all("Host"))
    return ",".join(query_of(path).get("address", []))
