"""Database access through the project's driver and proxy, as a pool, one connection per
request (the serverless pattern), or one HTTP request per query to the proxy's SQL-over-HTTP
endpoint (warm backends pooled by the proxy), chosen by the DB_MODE setting.

The pool is created lazily and again after a failure, so a service started while the database
or proxy is down becomes ready by itself once they return.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import driver
import driver.http
from app.settings import Settings

log = logging.getLogger(__name__)

PoolFactory = Callable[..., Awaitable[Any]]
Connector = Callable[..., Awaitable[Any]]


async def _driver_create_pool(dsn: str, **kwargs: Any) -> Any:
    return await driver.create_pool(dsn, **kwargs)


async def _driver_connect(dsn: str, **kwargs: Any) -> Any:
    return await driver.connect(dsn, **kwargs)


class Database:
    """Hands out connections in the configured mode; owns the pool's life."""

    def __init__(
        self,
        settings: Settings,
        *,
        pool_factory: PoolFactory | None = None,
        connect: Connector | None = None,
    ) -> None:
        self.settings = settings
        # Looked up per call, not bound at import, so tests can swap in a scripted fault.
        self._pool_factory = pool_factory or _driver_create_pool
        self._connect = connect or _driver_connect
        self._pool: Any = None
        self._pool_lock = asyncio.Lock()
        self._http: driver.http.HTTPClient | None = None

    @property
    def _transport(self) -> dict[str, Any]:
        return {
            "ws_proxy": self.settings.ws_proxy,
            "use_secure_websocket": self.settings.ws_secure,
            # 0 behind PgBouncer in transaction mode: named statements do not survive there
            "statement_cache_size": self.settings.statement_cache_size,
        }

    async def start(self) -> None:
        """Open the pool now if the database is reachable; otherwise on first use."""
        if self.settings.db_mode != "pool":
            return
        try:
            async with asyncio.timeout(self.settings.db_timeout_s):
                await self._get_pool()
        except (driver.Error, OSError, TimeoutError) as exc:
            log.warning("database not reachable at startup (%s); will retry on demand", exc)

    async def _get_pool(self) -> Any:
        if self._pool is not None:
            return self._pool
        async with self._pool_lock:
            if self._pool is None:
                self._pool = await self._pool_factory(
                    self.settings.database_url,
                    min_size=min(self.settings.pool_min_size, self.settings.pool_size),
                    max_size=self.settings.pool_size,
                    **self._transport,
                )
            return self._pool

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Any]:
        """A connection for one unit of work, returned or closed afterwards.

        Raises:
            driver.Error or TimeoutError: the caller answers 503.
        """
        if self.settings.db_mode == "pool":
            pool = await self._get_pool()
            async with pool.acquire() as conn:
                yield conn
            return
        if self.settings.db_mode == "http":
            # no session: each query is one POST on a kept-alive HTTP connection
            if self._http is None:
                self._http = driver.http.connect(
                    self.settings.database_url, endpoint=self.settings.sql_http_endpoint
                )
            yield self._http
            return
        # The serverless pattern: the query rides the last authentication flight
        # (wait_ready=False), one round trip fewer; a refused login surfaces at the query.
        conn = await self._connect(self.settings.database_url, wait_ready=False, **self._transport)
        try:
            yield conn
        finally:
            try:
                await conn.close()
            except (driver.Error, OSError) as exc:
                # the answer (or the original error) matters more than a failed goodbye
                log.info("closing a per-request connection failed: %r", exc)

    async def close(self) -> None:
        http, self._http = self._http, None
        if http is not None:
            await http.close()
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()
