"""The per-cell candidate cache: in-process TTL cache, optional shared Redis behind it, and
single-flight so that concurrent requests for one cold cell cost one database query.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any, Literal

from cachetools import TTLCache

from app.ranking import Cell
from app.sites import Site

log = logging.getLogger(__name__)

# (latitude, longitude) of the cell, and how many nearest sites its candidates cover
Key = tuple[float, float, int]
Candidates = Cell
Source = Literal["memory", "shared", "database", "coalesced"]
REDIS_PREFIX = "whc:cell:v1:"


class SharedCache:
    """Cells in Redis, so replicas share work. Any Redis failure is logged and treated as a
    miss: the shared cache may make answers faster, never fail them.
    """

    def __init__(self, url: str, ttl_s: float, timeout_s: float = 0.5) -> None:
        import redis.asyncio

        self.ttl_ms = max(1, int(ttl_s * 1000))
        self._redis: Any = redis.asyncio.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        )

    @staticmethod
    def _name(key: Key) -> str:
        return f"{REDIS_PREFIX}{key[0]:.2f}:{key[1]:.2f}:{key[2]}"

    async def get(self, key: Key) -> Candidates | None:
        try:
            raw = await self._redis.get(self._name(key))
        except Exception as exc:  # redis raises many unrelated types; a miss is always safe
            log.warning("shared cache read failed: %s", exc)
            return None
        if raw is None:
            return None
        try:
            return Cell.of(tuple(Site(**item) for item in json.loads(raw)))
        except (ValueError, TypeError) as exc:
            log.warning("shared cache entry %s unreadable: %s", self._name(key), exc)
            return None

    async def set(self, key: Key, value: Candidates) -> None:
        data = json.dumps([asdict(s) for s in value.sites], separators=(",", ":"))
        try:
            await self._redis.set(self._name(key), data, px=self.ttl_ms)
        except Exception as exc:
            log.warning("shared cache write failed: %s", exc)

    async def close(self) -> None:
        await self._redis.aclose()


class CellCache:
    """Cell -> candidates, with at most one load in flight per cell.

    The load runs as its own task, so a visitor who disconnects mid-query does not cancel it
    for the others waiting on the same cell. Failed loads are not cached.
    """

    def __init__(self, ttl_s: float, max_cells: int, shared: SharedCache | None = None) -> None:
        self._local: TTLCache[Key, Candidates] = TTLCache(maxsize=max_cells, ttl=ttl_s)
        self._inflight: dict[Key, asyncio.Task[tuple[Candidates, Source]]] = {}
        self.shared = shared

    def __len__(self) -> int:
        return len(self._local)

    def clear(self) -> None:
        self._local.clear()

    async def get(
        self, key: Key, load: Callable[[], Awaitable[Candidates]]
    ) -> tuple[Candidates, Source]:
        """The candidates for `key` and where they came from.

        Raises:
            Whatever `load` raises (e.g. driver.Error), to every request waiting on it.
        """
        hit = self._local.get(key)
        if hit is not None:
            return hit, "memory"
        task = self._inflight.get(key)
        if task is not None:
            value, _ = await asyncio.shield(task)
            return value, "coalesced"
        task = asyncio.ensure_future(self._fill(key, load))
        self._inflight[key] = task
        task.add_done_callback(lambda t: self._done(key, t))
        return await asyncio.shield(task)

    async def _fill(
        self, key: Key, load: Callable[[], Awaitable[Candidates]]
    ) -> tuple[Candidates, Source]:
        source: Source = "shared"
        value = await self.shared.get(key) if self.shared is not None else None
        if value is None:
            value, source = await load(), "database"
            if self.shared is not None:
                await self.shared.set(key, value)
        self._local[key] = value
        return value, source

    def _done(self, key: Key, task: asyncio.Task[tuple[Candidates, Source]]) -> None:
        if self._inflight.get(key) is task:
            del self._inflight[key]
        if not task.cancelled() and task.exception() is not None:
            log.debug("load of cell %s failed: %s", key, task.exception())

    async def close(self) -> None:
        if self.shared is not None:
            await self.shared.close()
