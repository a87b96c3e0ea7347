"""ORM speed, on demand: the ``postgresql+pgws`` dialect (TCP, WebSocket) against SQLAlchemy's
asyncpg dialect, through ``AsyncSession``.

    .venv/bin/python -m bench.orm_bench [--rows 10000] [--rounds 11] [--loop asyncio|uvloop|both]
        [--profile]

One process, one private Postgres cluster and one proxy process, both started here. Per round
and contender (in a shuffled order, so background load hits all alike): the table is emptied,
then timed: ``session.add_all()`` of ``--rows`` ORM objects and ``commit()`` (SQLAlchemy's
insertmanyvalues with RETURNING of the generated keys), then ``select(Item)`` of all of them
back into a fresh session. Engines keep their pooled connection across rounds (one warm-up
round first, not counted). Prints medians, min, max and ratios to the asyncpg dialect, of wall
time and of this process's CPU time, per event loop; asserts nothing but the row counts.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import random
import statistics
import sys
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import sqlalchemy
from sqlalchemy import String, func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from tools.pgcluster import Cluster, destroy, free_port, start_temp_cluster
from tools.procs import start_and_wait, stop

ROLE = "scram_user"
EPOCH = datetime(2026, 1, 1)  # naive: the column is TIMESTAMP WITHOUT TIME ZONE


class Base(DeclarativeBase):
    pass


class Item(Base):
    """A row of the usual shapes: key, text, integer, float, timestamp, nullable text."""

    __tablename__ = "orm_bench_item"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80))
    qty: Mapped[int]
    price: Mapped[float]
    created: Mapped[datetime]
    note: Mapped[str | None]


@dataclass
class Contender:
    name: str
    url: str
    engine: AsyncEngine | None = None
    samples: dict[str, list[float]] = field(default_factory=dict)


def urls(pg: Cluster, ws_proxy: str) -> list[Contender]:
    base = pg.dsn(ROLE).removeprefix("postgresql://")
    plain = "sslmode=disable&allow_unencrypted_password=true"
    return [
        Contender("pgws tcp", f"postgresql+pgws://{base}?{plain}"),
        Contender(
            "pgws ws",
            f"postgresql+pgws://{base}?{plain}&ws_proxy={ws_proxy}&use_secure_websocket=false",
        ),
        Contender("asyncpg tcp", f"postgresql+asyncpg://{base}?ssl=disable"),
    ]


def items(n: int) -> list[Item]:
    return [
        Item(
            name=f"item {i}",
            qty=i % 1000,
            price=i * 0.25,
            created=EPOCH + timedelta(seconds=i),
            note=None if i % 3 else f"note {i}",
        )
        for i in range(n)
    ]


async def insert(engine: AsyncEngine, n: int) -> None:
    async with AsyncSession(engine) as session:
        session.add_all(items(n))
        await session.commit()


async def select_all(engine: AsyncEngine, n: int) -> None:
    async with AsyncSession(engine) as session:
        rows = (await session.scalars(select(Item))).all()
    assert len(rows) == n, (len(rows), n)


async def empty(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(text(f"truncate {Item.__tablename__} restart identity"))


async def one_round(c: Contender, n: int, record: bool) -> None:
    assert c.engine is not None
    await empty(c.engine)
    clock, cpu = time.perf_counter, time.process_time
    # the garbage of earlier rounds (tens of thousands of ORM objects) is collected untimed,
    # so that no contender pays for another's
    gc.collect()
    t0, c0 = clock(), cpu()
    await insert(c.engine, n)
    t1, c1 = clock(), cpu()
    gc.collect()
    t1b, c1b = clock(), cpu()
    await select_all(c.engine, n)
    t2, c2 = clock(), cpu()
    async with c.engine.connect() as conn:
        count = (await conn.execute(select(func.count()).select_from(Item))).scalar_one()
    assert count == n, (count, n)
    if record:
        c.samples.setdefault("insert", []).append(t1 - t0)
        c.samples.setdefault("select", []).append(t2 - t1b)
        c.samples.setdefault("insert cpu", []).append(c1 - c0)
        c.samples.setdefault("select cpu", []).append(c2 - c1b)


async def run(args: argparse.Namespace, pg: Cluster, ws_proxy: str) -> list[Contender]:
    contenders = urls(pg, ws_proxy)
    for c in contenders:
        c.engine = create_async_engine(c.url, pool_size=1)
    assert contenders[0].engine is not None
    async with contenders[0].engine.begin() as conn:
        await conn.run_sync(Base.metadata.drop_all)
        await conn.run_sync(Base.metadata.create_all)
    rnd = random.Random(7)
    try:
        for c in contenders:  # warm-up: connections, statement caches, type introspection
            await one_round(c, args.rows, record=False)
        for _ in range(args.rounds):
            for c in rnd.sample(contenders, len(contenders)):
                await one_round(c, args.rows, record=True)
        if args.profile:
            await profile(contenders[0], args.rows)
    finally:
        for c in contenders:
            if c.engine is not None:
                await c.engine.dispose()
    return contenders


async def profile(c: Contender, n: int) -> None:
    """Where the client time of the pgws dialect goes (cProfile, by own time)."""
    import cProfile
    import pstats

    assert c.engine is not None
    prof = cProfile.Profile()
    for _ in range(3):
        await empty(c.engine)
        prof.enable()
        await insert(c.engine, n)
        await select_all(c.engine, n)
        prof.disable()
    print(f"\nprofile: {c.name}, 3 x (insert {n} + select {n})")
    pstats.Stats(prof, stream=sys.stdout).sort_stats("tottime").print_stats(25)


def report(loop: str, rows: int, contenders: list[Contender]) -> None:
    base = {k: statistics.median(v) for k, v in contenders[-1].samples.items()}
    print(f"\nloop {loop}: {rows} rows, ms; ratio = median / asyncpg dialect's median; cpu = this "
          "process's CPU time (client side: ORM, dialect, driver), less hit by load")  # fmt: skip
    print(f"  {'contender':<13}{'op':<8}{'median':>9}{'min':>9}{'max':>9}{'ratio':>8}"
          f"{'cpu':>9}{'ratio':>8}{'n':>4}")  # fmt: skip
    for what in ("insert", "select"):
        for c in contenders:
            xs, cpus = c.samples[what], c.samples[f"{what} cpu"]
            med, cpu = statistics.median(xs), statistics.median(cpus)
            print(f"  {c.name:<13}{what:<8}{med * 1e3:9.1f}{min(xs) * 1e3:9.1f}"
                  f"{max(xs) * 1e3:9.1f}{med / base[what]:8.2f}{cpu * 1e3:9.1f}"
                  f"{cpu / base[f'{what} cpu']:8.2f}{len(xs):4d}")  # fmt: skip
    total = {
        c.name: statistics.median(
            [a + b for a, b in zip(c.samples["insert"], c.samples["select"], strict=True)]
        )
        for c in contenders
    }
    ref = total[contenders[-1].name]
    print("  insert + select, median of the per-round sums: " + ", ".join(
        f"{name} {t * 1e3:.1f} ms ({t / ref:.2f}x)" for name, t in total.items()
    ))  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=11)
    ap.add_argument("--loop", choices=("asyncio", "uvloop", "both"), default="both")
    ap.add_argument("--profile", action="store_true", help="cProfile the pgws TCP contender")
    args = ap.parse_args()
    print(f"python {sys.version.split()[0]}, SQLAlchemy {sqlalchemy.__version__}, "
          f"asyncpg {asyncpg.__version__}")  # fmt: skip
    pg = start_temp_cluster()
    proc = None
    try:
        port = free_port()
        env = {"LISTEN_PORT": f"127.0.0.1:{port}",
               "ALLOW_ADDR_REGEX": rf"127\.0\.0\.1:{pg.port}"}  # fmt: skip
        proc, _ = start_and_wait([sys.executable, "-m", "proxy"], "listening", env=env)
        ws_proxy = f"127.0.0.1:{port}/v2"
        runners: list[tuple[str, Callable[[Coroutine[Any, Any, list[Contender]]], Any]]] = []
        if args.loop in ("asyncio", "both"):
            runners.append(("asyncio", asyncio.run))
        if args.loop in ("uvloop", "both"):
            import uvloop

            runners.append(("uvloop", uvloop.run))
        for name, runner in runners:
            report(name, args.rows, runner(run(args, pg, ws_proxy)))
    finally:
        if proc is not None:
            stop(proc)
        destroy(pg)


if __name__ == "__main__":
    main()
