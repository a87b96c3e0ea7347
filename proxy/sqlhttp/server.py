"""The SQL-over-HTTP listener: HTTP/1.1 keep-alive (h11) in front of the backend pools, with
the checks of the WebSocket path (allow-list, resolved-address deny list, token, client IP)
plus its own limits (body size, rows and bytes per response, requests per second per IP)."""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
import json
import logging
import ssl
import time
from collections.abc import Iterable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import h11
from prometheus_client import Counter, Histogram

import driver

from ..admission import Limits, client_ip
from ..config import Config
from ..metrics import Metrics
from ..target import Refused, Target, check_allowed, forbidden, is_denied, parse_target, resolve
from .backends import Backends, PoolFull, RequestTimeout, Settings
from .neon import BadRequest, SQLRequest, error_body, parse_request, result_body
from .tokens import TokenCheck

log = logging.getLogger("proxy.sql")

MAX_HEAD = 64 * 1024  # request line + headers
KEEPALIVE_IDLE = 75.0  # seconds a kept-alive client connection may wait for its next request
_CORS_HEADERS = (
    "Authorization, Content-Type, Neon-Connection-String, Neon-Raw-Text-Output, "
    "Neon-Array-Mode, Neon-Batch-Isolation-Level, Neon-Batch-Read-Only, Neon-Batch-Deferrable, "
    "Neon-Pool-Opt-In"
)


@dataclass(slots=True)
class _Reply:
    status: int
    body: bytes
    content_type: str = "application/json"
    origin: str = ""  # echoed in Access-Control-Allow-Origin when CORS admits it


def _json(status: int, doc: Any) -> _Reply:
    return _Reply(status, json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode())


class _Headers(dict[str, str]):
    """Lower-case names; a repeated header keeps its last value except where joined."""

    @classmethod
    def of(cls, raw: Iterable[tuple[bytes, bytes]]) -> _Headers:
        out = cls()
        for name, value in raw:
            key = name.decode("latin-1").lower()
            text = value.decode("utf-8", "replace")
            out[key] = f"{out[key]},{text}" if key == "x-forwarded-for" and key in out else text
        return out

    def get_all(self, name: str) -> list[str]:
        """What admission.client_ip reads (websockets' Headers API)."""
        value = self.get(name.lower())
        return [] if value is None else [value]


class RateLimit:
    """A token bucket per client IP: `rate` requests per second, bursts up to `rate`."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.buckets: dict[str, tuple[float, float]] = {}

    def allow(self, ip: str) -> bool:
        if not self.rate:
            return True
        now = time.monotonic()
        tokens, last = self.buckets.get(ip, (self.rate, now))
        tokens = min(self.rate, tokens + (now - last) * self.rate)
        if len(self.buckets) > 100_000:  # forget the long-idle first, bounded memory
            self.buckets = {k: v for k, v in self.buckets.items() if now - v[1] < 60}
        if tokens < 1:
            self.buckets[ip] = (tokens, now)
            return False
        self.buckets[ip] = (tokens - 1, now)
        return True


class SQLMetrics:
    """sqlhttp_* series in the relay's registry, so one /metrics serves both."""

    def __init__(self, metrics: Metrics) -> None:
        r = metrics.registry
        self.requests = Counter(
            "sqlhttp_requests", "SQL-over-HTTP requests, by HTTP status", ["status"], registry=r
        )
        self.duration = Histogram(
            "sqlhttp_request_duration_seconds",
            "Time from request to response",
            buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30),
            registry=r,
        )
        self.backends_opened = Counter(
            "sqlhttp_backend_connections_opened", "Backend connections opened", registry=r
        )
        self.backends_reused = Counter(
            "sqlhttp_backend_connections_reused", "Requests served by a warm backend", registry=r
        )


class SQLServer:
    """Owns the listening socket, the backend pools and the per-IP limits."""

    def __init__(self, cfg: Config, metrics: Metrics) -> None:
        self.cfg = cfg
        self.metrics = SQLMetrics(metrics)
        self.backends = Backends(
            Settings(
                max_size=cfg.sql_http_pool_size,
                idle_timeout=cfg.sql_http_pool_idle_timeout,
                connect_timeout=cfg.connect_timeout,
                statement_timeout=cfg.sql_http_statement_timeout,
            )
        )
        self.rate = RateLimit(cfg.sql_http_rate_limit)
        self.tokens = TokenCheck(cfg.sql_http_auth_token, cfg.sql_http_jwks_file)
        self.limits = Limits(cfg.max_connections, cfg.max_connections_per_ip)
        self.origins = frozenset(
            o.strip() for o in cfg.sql_http_cors_origins.split(",") if o.strip()
        )
        self._ids = itertools.count(1)
        self._server: asyncio.Server | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._clients: set[asyncio.Task[None]] = set()

    async def start(self) -> list[str]:
        cfg = self.cfg
        host, port = cfg.sql_http_listen or ("", 0)
        ctx = None
        if cfg.tls_cert:
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(cfg.tls_cert, cfg.tls_key)
        self._server = await asyncio.start_server(
            self._client, host or None, port, ssl=ctx, limit=MAX_HEAD
        )
        self._sweeper = asyncio.create_task(self._sweep())
        addrs = []
        for sock in self._server.sockets:
            h, p = sock.getsockname()[:2]
            addrs.append(f"[{h}]:{p}" if ":" in h else f"{h}:{p}")
        return addrs

    async def _sweep(self) -> None:
        period = max(1.0, self.cfg.sql_http_pool_idle_timeout / 2)
        while True:
            await asyncio.sleep(period)
            await self.backends.sweep()

    async def shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        if self._sweeper is not None:
            self._sweeper.cancel()
        for task in list(self._clients):
            task.cancel()
        await asyncio.gather(*self._clients, return_exceptions=True)
        await self.backends.close()

    # ---- one client connection: requests in turn (HTTP/1.1 keep-alive) -----------------

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._clients.add(task)
        peer = writer.get_extra_info("peername")
        peer_ip = str(peer[0]) if peer else "?"
        shown = (
            f"[{peer_ip}]:{peer[1]}" if ":" in peer_ip else f"{peer_ip}:{peer[1] if peer else '?'}"
        )
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
        try:
            self.limits.acquire(peer_ip)
        except Refused as exc:  # the relay's MAX_CONNECTIONS(_PER_IP), counted apart
            self._clients.discard(task)
            writer.write(_refusal(exc))
            writer.close()
            return
        try:
            while True:
                try:
                    reply, close = await self._one(conn, reader, peer_ip, shown)
                except _Gone:
                    return
                headers = [
                    ("Content-Type", reply.content_type),
                    ("Content-Length", str(len(reply.body))),
                    *self._cors(reply),
                ]
                if close:
                    headers.append(("Connection", "close"))
                data = conn.send(h11.Response(status_code=reply.status, headers=headers)) or b""
                data += conn.send(h11.Data(data=reply.body)) or b""
                data += conn.send(h11.EndOfMessage()) or b""
                writer.write(data)
                await writer.drain()
                if conn.our_state is h11.MUST_CLOSE or close:
                    return
                conn.start_next_cycle()
        except (OSError, h11.LocalProtocolError, asyncio.IncompleteReadError) as exc:
            log.debug("sql client %s: %s", peer_ip, exc)
        except asyncio.CancelledError:
            pass  # shutdown(): the task ends here, the stream callback has nothing to report
        finally:
            self.limits.release(peer_ip)
            self._clients.discard(task)
            writer.close()

    def _cors(self, reply: _Reply) -> list[tuple[str, str]]:
        origin = reply.origin
        if not origin:
            return []
        return [
            ("Access-Control-Allow-Origin", origin),
            ("Vary", "Origin"),
            ("Access-Control-Allow-Methods", "POST, OPTIONS"),
            ("Access-Control-Allow-Headers", _CORS_HEADERS),
            ("Access-Control-Max-Age", "86400"),
        ]

    async def _next(self, conn: h11.Connection, reader: asyncio.StreamReader, wait: float) -> Any:
        while True:
            event = conn.next_event()
            if event is not h11.NEED_DATA:
                return event
            try:
                async with asyncio.timeout(wait):
                    data = await reader.read(65536)
            except TimeoutError:
                raise _Gone from None
            conn.receive_data(data)

    async def _one(
        self, conn: h11.Connection, reader: asyncio.StreamReader, peer_ip: str, peer: str
    ) -> tuple[_Reply, bool]:
        """Read one request and answer it; returns (reply, close afterwards)."""
        try:
            event = await self._next(conn, reader, KEEPALIVE_IDLE)
            if isinstance(event, h11.ConnectionClosed):
                raise _Gone
            if not isinstance(event, h11.Request):
                raise _Gone
        except h11.RemoteProtocolError as exc:
            return _json(exc.error_status_hint, {"message": f"bad HTTP request: {exc}"}), True
        headers = _Headers.of(event.headers)
        method = event.method.decode()
        path = event.target.decode("latin-1").partition("?")[0]
        limit = self.cfg.sql_http_max_body
        declared = headers.get("content-length", "0")
        if declared.isdigit() and limit and int(declared) > limit:
            return _json(413, {"message": f"request body larger than {limit} bytes"}), True
        body = bytearray()
        try:
            # the whole body within one deadline: a client trickling bytes cannot hold on
            async with asyncio.timeout(self.cfg.handshake_timeout or 30.0):
                while True:
                    ev = await self._next(conn, reader, KEEPALIVE_IDLE)
                    if isinstance(ev, h11.Data):
                        body += ev.data
                        if limit and len(body) > limit:
                            message = f"request body larger than {limit} bytes"
                            return _json(413, {"message": message}), True
                    elif isinstance(ev, h11.EndOfMessage):
                        break
                    else:
                        raise _Gone
        except h11.RemoteProtocolError as exc:
            return _json(400, {"message": f"bad HTTP request: {exc}"}), True
        except TimeoutError:
            return _json(408, {"message": "request body not received in time"}), True
        reply = await self._handle(method, path, headers, bytes(body), peer_ip, peer)
        origin = headers.get("origin")
        if origin and ("*" in self.origins or origin in self.origins):
            reply.origin = origin
        return reply, False

    async def _handle(
        self, method: str, path: str, headers: _Headers, body: bytes, peer_ip: str, peer: str
    ) -> _Reply:
        started = time.monotonic()
        ip = client_ip(peer_ip, headers, self.cfg.trusted_proxies)  # type: ignore[arg-type]
        req_id = next(self._ids)
        info: dict[str, Any] = {"target": "-", "queries": 0, "rows": 0}
        try:
            reply = await self._answer(method, path, headers, body, ip, info)
        except Exception:  # a bug of ours: the client gets a 500, the log the traceback
            log.exception("sql %d: internal error", req_id)
            info["reason"] = "internal error"
            reply = _json(500, {"message": "internal error in the SQL endpoint"})
        duration = time.monotonic() - started
        self.metrics.requests.labels(status=str(reply.status)).inc()
        self.metrics.duration.observe(duration)
        if self.cfg.log_conn_info and path != "/healthz":
            log.info(
                "sql %d client=%s target=%s status=%d queries=%d rows=%d bytes=%d "
                "backend=%s duration=%.3fs%s",
                req_id,
                peer if ip == peer_ip else f"{ip} (via {peer})",
                info["target"],
                reply.status,
                info["queries"],
                info["rows"],
                len(reply.body),
                info.get("backend", "-"),
                duration,
                f" reason={info['reason']!r}" if "reason" in info else "",
            )
        return reply

    async def _answer(
        self,
        method: str,
        path: str,
        headers: _Headers,
        body: bytes,
        ip: str,
        info: dict[str, Any],
    ) -> _Reply:
        if path == "/healthz":
            return _Reply(200, b"ok\n", "text/plain")
        if path != "/sql":
            return _json(404, {"message": "not found: the SQL endpoint is /sql"})
        if method == "OPTIONS":
            return _Reply(204, b"", "text/plain")
        if method != "POST":
            return _json(405, {"message": "use POST"})
        if not self.rate.allow(ip):
            info["reason"] = "rate limited"
            return _json(429, {"message": "too many requests from your address"})
        if self.tokens.required:
            admitted, why = self.tokens.admits(headers)
            if not admitted:
                info["reason"] = why
                return _json(401, {"message": why})
        try:
            req = parse_request(headers, body)
            info["target"] = req.conn.target
            info["queries"] = len(req.queries)
            target = parse_target(req.conn.target)
            check_allowed(target, self.cfg.allow_addr_regex)
            ips = await self._resolve(target)
        except BadRequest as exc:
            info["reason"] = exc.message
            return _json(exc.status, {"message": exc.message})
        except Refused as exc:
            info["reason"] = exc.reason
            return _json(exc.status, {"message": exc.reason})
        return await self._run(req, ips, info)

    async def _resolve(self, target: Target) -> list[str]:
        """resolve() of the WebSocket path; an address literal skips the resolver thread (a
        wake-up per request that costs milliseconds on a busy machine), same deny rules."""
        try:
            ip = ipaddress.ip_address(target.host)
        except ValueError:
            return await resolve(target, self.cfg.deny_networks, self.cfg.connect_timeout)
        if is_denied(ip, self.cfg.deny_networks) or ip.is_multicast:
            raise forbidden(f"target resolves to a denied address ({ip})", "denied_network")
        return [str(ip)]

    async def _run(self, req: SQLRequest, ips: list[str], info: dict[str, Any]) -> _Reply:
        cfg = self.cfg
        try:
            outcome = await self.backends.run(
                req.conn,
                ips,
                req.queries,
                batch=req.batch,
                isolation=req.isolation,
                readonly=req.readonly,
                deferrable=req.deferrable,
            )
        except driver.PostgresError as exc:
            info["reason"] = f"{exc.sqlstate}: {exc.message}"[:200]
            return _json(400, error_body(exc))
        except PoolFull as exc:
            info["reason"] = str(exc)
            return _json(503, {"message": f"database busy: {exc}"})
        except RequestTimeout as exc:
            info["reason"] = str(exc)
            return _json(400, {"message": f"canceling statement: {exc}", "code": "57014"})
        except (driver.Error, OSError, TimeoutError) as exc:
            info["reason"] = f"{type(exc).__name__}: {exc}"[:200]
            return _json(502, {"message": f"cannot reach the database: {exc}"})
        (self.metrics.backends_reused if outcome.reused else self.metrics.backends_opened).inc()
        info["backend"] = "warm" if outcome.reused else "new"
        rows = sum(len(r) for r in outcome.results)
        info["rows"] = rows
        if cfg.sql_http_max_rows and rows > cfg.sql_http_max_rows:
            info["reason"] = "row limit"
            return _json(
                507, {"message": f"result has {rows} rows, more than {cfg.sql_http_max_rows}"}
            )
        bodies = [result_body(r.fields, r, r.status, req.array_mode) for r in outcome.results]
        reply = _json(200, {"results": bodies} if req.batch else bodies[0])
        if cfg.sql_http_max_response and len(reply.body) > cfg.sql_http_max_response:
            info["reason"] = "size limit"
            return _json(
                507,
                {"message": f"response is too large (max is {cfg.sql_http_max_response} bytes)"},
            )
        return reply


def _refusal(exc: Refused) -> bytes:
    """A whole HTTP/1.1 response for a connection refused before any request is read."""
    body = json.dumps({"message": exc.reason}).encode()
    head = (
        f"HTTP/1.1 {exc.status} {HTTPStatus(exc.status).phrase}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


class _Gone(Exception):
    """The client closed, went idle, or sent something other than the next request."""
