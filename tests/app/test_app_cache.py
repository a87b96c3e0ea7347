"""The cell cache on its own: single-flight, failures not cached, TTL and size bounds.

The loaders here are plain coroutines standing in for "one database query", which is what
the cache sees; the same behaviour against the real database is in test_app_routes.py.
"""

from __future__ import annotations

import asyncio

import pytest

from app.cache import CellCache
from app.ranking import Cell
from app.sites import Site

SITE = Cell.of((Site(1, "A", "Cultural", "X", "xx", 1990, 1.0, 2.0),))


async def test_concurrent_misses_for_one_cell_run_one_load() -> None:
    cache = CellCache(ttl_s=60, max_cells=10)
    gate, started = asyncio.Event(), asyncio.Event()
    calls = 0

    async def load() -> Cell:
        nonlocal calls
        calls += 1
        started.set()
        await gate.wait()
        return SITE

    waiters = [asyncio.ensure_future(cache.get((1.0, 2.0, 10), load)) for _ in range(20)]
    await started.wait()  # the load runs after every waiter has reached the cache
    gate.set()
    results = await asyncio.gather(*waiters)
    assert calls == 1
    sources = sorted(src for _, src in results)
    assert sources == ["coalesced"] * 19 + ["database"]
    assert all(value == SITE for value, _ in results)
    assert await cache.get((1.0, 2.0, 10), load) == (SITE, "memory")
    assert calls == 1


async def test_failed_load_reaches_every_waiter_and_is_not_cached() -> None:
    cache = CellCache(ttl_s=60, max_cells=10)
    gate, started = asyncio.Event(), asyncio.Event()

    async def failing() -> Cell:
        started.set()
        await gate.wait()
        raise ConnectionError("database down")

    waiters = [asyncio.ensure_future(cache.get((0.0, 0.0, 10), failing)) for _ in range(3)]
    await started.wait()
    gate.set()
    results = await asyncio.gather(*waiters, return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results)

    async def working() -> Cell:
        return SITE

    assert await cache.get((0.0, 0.0, 10), working) == (SITE, "database")


async def test_a_cancelled_visitor_does_not_cancel_the_load_for_others() -> None:
    cache = CellCache(ttl_s=60, max_cells=10)
    gate, started = asyncio.Event(), asyncio.Event()

    async def load() -> Cell:
        started.set()
        await gate.wait()
        return SITE

    first = asyncio.ensure_future(cache.get((5.0, 5.0, 10), load))
    second = asyncio.ensure_future(cache.get((5.0, 5.0, 10), load))
    await started.wait()
    first.cancel()
    gate.set()
    assert await second == (SITE, "coalesced")
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_size_bound_evicts_old_cells() -> None:
    cache = CellCache(ttl_s=60, max_cells=2)

    async def load() -> Cell:
        return SITE

    for key in ((1.0, 1.0, 10), (2.0, 2.0, 10), (3.0, 3.0, 10)):
        await cache.get(key, load)
    assert len(cache) == 2
    assert (await cache.get((1.0, 1.0, 10), load))[1] == "database"
