"""Load shedding: a bound on requests in progress and on requests waiting, per worker.

Without it an overloaded worker accepts every request and serves them all slowly: under 1,000
connections on one cached cell p99 was 1.2 s and some requests waited past 10 s. A request
that cannot start within `queue_timeout_s`, or that finds the queue full, gets 503 with
Retry-After at once, which a client or the front can act on, instead of a slow answer.
"""

from __future__ import annotations

import asyncio
import json

from starlette.types import ASGIApp, Receive, Scope, Send

# Probes must answer while the worker sheds, or the orchestrator restarts a busy worker.
EXEMPT_PATHS = frozenset({"/healthz"})


class LoadShedding:
    """ASGI middleware: at most `max_active` requests run, at most `max_queued` wait (FIFO).

    Args:
        app: the wrapped application.
        max_active: requests handled at the same time (0: no bound, the middleware is a no-op).
        max_queued: requests allowed to wait for a slot; more are shed at once.
        queue_timeout_s: how long a request may wait for a slot before it is shed.
        retry_after_s: the Retry-After value of a shed request's 503.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_active: int,
        max_queued: int,
        queue_timeout_s: float,
        retry_after_s: int,
    ) -> None:
        self.app = app
        self.max_active, self.max_queued = max_active, max_queued
        self.queue_timeout_s = queue_timeout_s
        self._slots = asyncio.Semaphore(max_active) if max_active > 0 else None
        self._waiting = 0
        self.shed = 0
        body = json.dumps(
            {"detail": "service temporarily unavailable", "reason": "the server is overloaded"}
        ).encode()
        self._body = body
        self._headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"retry-after", str(retry_after_s).encode()),
            (b"cache-control", b"no-store"),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        slots = self._slots
        if slots is None or scope["type"] != "http" or scope["path"] in EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return
        if slots.locked():
            if self._waiting >= self.max_queued:
                await self._refuse(send)
                return
            self._waiting += 1
            try:
                async with asyncio.timeout(self.queue_timeout_s):
                    await slots.acquire()
            except TimeoutError:
                await self._refuse(send)
                return
            finally:
                self._waiting -= 1
        else:
            await slots.acquire()
        try:
            await self.app(scope, receive, send)
        finally:
            slots.release()

    async def _refuse(self, send: Send) -> None:
        self.shed += 1
        await send({"type": "http.response.start", "status": 503, "headers": self._headers})
        await send({"type": "http.response.body", "body": self._body})
