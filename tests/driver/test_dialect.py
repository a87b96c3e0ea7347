"""The SQLAlchemy dialect ``postgresql+pgws`` against the real cluster, over TCP and through the
real proxy: ORM models with a relationship, JSONB, an enum and a unique constraint; the
DB-API exception mapping; server-side streaming; isolation, read-only and savepoints;
PgBouncer in transaction mode with the statement cache off from the URL."""

from __future__ import annotations

import enum
import ipaddress
import uuid
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import pytest
from sqlalchemy import Column, ForeignKey, Integer, MetaData, String, Table, exc, select, text
from sqlalchemy.dialects.postgresql import (
    BIT,
    CIDR,
    DATERANGE,
    INET,
    INT4MULTIRANGE,
    INT4RANGE,
    JSONB,
    BitString,
    Range,
)
from sqlalchemy.dialects.postgresql.ranges import MultiRange
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, selectinload

import driver
from tests.conftest import ProxyProcess
from tools.pgbouncer import Bouncer
from tools.pgcluster import Cluster


class Mood(enum.Enum):
    calm = "calm"
    curious = "curious"


class Base(DeclarativeBase):
    pass


class Author(Base):
    __tablename__ = "author"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    profile: Mapped[dict[str, Any]] = mapped_column(JSONB)
    mood: Mapped[Mood]
    books: Mapped[list[Book]] = relationship(back_populates="author", order_by="Book.id")


class Book(Base):
    __tablename__ = "book"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str]
    author_id: Mapped[int] = mapped_column(ForeignKey("author.id"))
    author: Mapped[Author] = relationship(back_populates="books")


def url(pg: Cluster, via: str, proxy: ProxyProcess, **query: str) -> str:
    """A ``postgresql+pgws`` URL for the SCRAM role, over TCP or through the proxy."""
    base = pg.dsn("scram_user", **query).replace("postgresql://", "postgresql+pgws://", 1)
    if via == "ws":
        sep = "&" if "?" in base else "?"
        base += f"{sep}ws_proxy={proxy.ws_proxy}&use_secure_websocket=false"
    return base


@pytest.fixture(params=["tcp", "ws"])
def via(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def engine(pg: Cluster, proxy: ProxyProcess, via: str) -> AsyncIterator[AsyncEngine]:
    """An engine whose tables live in a schema of their own (dropped afterwards)."""
    schema = "orm_" + uuid.uuid4().hex[:8]
    pg.psql(f"CREATE SCHEMA {schema} AUTHORIZATION scram_user")
    eng = create_async_engine(url(pg, via, proxy), pool_pre_ping=True).execution_options(
        schema_translate_map={None: schema}
    )
    async with eng.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    try:
        yield eng
    finally:
        await eng.dispose()
        pg.psql(f"DROP SCHEMA {schema} CASCADE; DROP TYPE IF EXISTS {schema}.mood")


async def test_orm_round_trip(engine: AsyncEngine) -> None:
    async with AsyncSession(engine, expire_on_commit=False) as session:
        authors = [
            Author(name=f"author {i}", profile={"n": i, "tags": ["a", "ü"]}, mood=Mood.curious)
            for i in range(30)
        ]
        for i, a in enumerate(authors):
            a.books = [Book(title=f"book {i}.{j}") for j in range(2)]
        session.add_all(authors)
        await session.commit()  # insertmanyvalues with RETURNING fills the ids
        assert sorted(a.id for a in authors) == list(range(1, 31))

    async with AsyncSession(engine) as session:
        rows = (
            await session.scalars(
                select(Author).options(selectinload(Author.books)).order_by(Author.id)
            )
        ).all()
        assert [a.name for a in rows] == [f"author {i}" for i in range(30)]
        assert rows[7].profile == {"n": 7, "tags": ["a", "ü"]}
        assert rows[7].mood is Mood.curious
        assert [b.title for b in rows[7].books] == ["book 7.0", "book 7.1"]
        assert rows[7].books[0].author is rows[7]

        hit = await session.scalar(
            select(Author.name).where(Author.profile["n"].as_integer() == 12)
        )
        assert hit == "author 12"


async def test_ranges_bitstrings_and_inet_round_trip(engine: AsyncEngine) -> None:
    """SQLAlchemy's Range / MultiRange go through the driver's Range (as the asyncpg dialect's
    go through asyncpg.Range); BIT as SQLAlchemy's BitString; inet/cidr as ipaddress objects."""
    md = MetaData()
    t = Table(
        "typed",
        md,
        Column("id", Integer, primary_key=True),
        Column("span", INT4RANGE),
        Column("spans", INT4MULTIRANGE),
        Column("days", DATERANGE),
        Column("flags", BIT(4)),
        Column("addr", INET),
        Column("net", CIDR),
    )
    row = {
        "id": 1,
        "span": Range(1, 10),
        "spans": MultiRange([Range(1, 3), Range(5, 8, bounds="[]")]),
        "days": Range(date(2026, 1, 1), None, bounds="[)"),
        "flags": BitString("1010"),
        "addr": ipaddress.ip_address("192.0.2.7"),
        "net": ipaddress.ip_network("2001:db8::/32"),
    }
    async with engine.begin() as conn:
        await conn.run_sync(md.create_all)
        await conn.execute(t.insert(), row)
        await conn.execute(t.insert(), {"id": 2, "span": Range(empty=True)})
        got = (await conn.execute(select(t).order_by(t.c.id))).all()
        hit = await conn.scalar(select(t.c.id).where(t.c.span.contains(9)))
    assert got[0]._asdict() == {**row, "spans": MultiRange([Range(1, 3), Range(5, 9)])}
    assert got[1].span == Range(empty=True) and got[1].spans is None
    assert hit == 1


async def test_exceptions_map_to_dbapi_classes(engine: AsyncEngine) -> None:
    async with AsyncSession(engine) as session:
        session.add(Author(name="once", profile={}, mood=Mood.calm))
        await session.commit()
    async with AsyncSession(engine) as session:
        session.add(Author(name="once", profile={}, mood=Mood.calm))
        with pytest.raises(exc.IntegrityError) as info:
            await session.commit()
    assert info.value.orig is not None
    assert getattr(info.value.orig, "sqlstate", None) == "23505"
    assert isinstance(info.value.orig, Exception)
    assert isinstance(info.value.orig.__cause__, driver.errors.UniqueViolation)

    async with engine.connect() as conn:
        with pytest.raises(exc.ProgrammingError) as perr:
            await conn.execute(text("select * from no_such_table"))
        assert perr.value.orig is not None
        assert isinstance(perr.value.orig.__cause__, driver.errors.UndefinedTable)
        await conn.rollback()
        with pytest.raises(exc.DataError):
            await conn.execute(text("select 1 / 0"))


async def test_dropped_connection_is_operational_error_and_pool_recovers(
    engine: AsyncEngine, pg: Cluster
) -> None:
    async with engine.connect() as conn:
        pid = await conn.scalar(text("select pg_backend_pid()"))
        pg.psql(f"select pg_terminate_backend({pid})")
        with pytest.raises(exc.OperationalError) as info:
            await conn.execute(text("select 1"))
        assert info.value.connection_invalidated
    async with engine.connect() as conn:  # pre-ping replaced the dead connection
        assert await conn.scalar(text("select 2")) == 2
        assert await conn.scalar(text("select pg_backend_pid()")) != pid


async def test_server_side_stream(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        result = await conn.stream(
            text("select g, repeat('x', g % 7) from generate_series(1, 2500) g"),
            execution_options={"yield_per": 100},
        )
        seen = [row[0] async for row in result]
        assert seen == list(range(1, 2501))


async def test_isolation_readonly_and_savepoints(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        ser = await conn.execution_options(isolation_level="SERIALIZABLE")
        assert await ser.scalar(text("show transaction_isolation")) == "serializable"
        await ser.rollback()
    async with engine.connect() as conn:
        ro = await conn.execution_options(postgresql_readonly=True)
        with pytest.raises(exc.InternalError):  # 25006 read_only_sql_transaction
            await ro.execute(text("create temp table t_ro (x int)"))
    async with AsyncSession(engine) as session:
        session.add(Author(name="kept", profile={}, mood=Mood.calm))
        await session.flush()
        nested = await session.begin_nested()
        session.add(Author(name="dropped", profile={}, mood=Mood.calm))
        await session.flush()
        await nested.rollback()
        await session.commit()
        names = (await session.scalars(select(Author.name).order_by(Author.name))).all()
    assert names == ["kept"]


async def test_pgbouncer_transaction_mode_with_cache_off_from_the_url(
    pgbouncer: Bouncer, pg: Cluster
) -> None:
    dsn = pgbouncer.dsn("scram_user")
    eng = create_async_engine(
        dsn.replace("postgresql://", "postgresql+pgws://", 1)
        + ("&" if "?" in dsn else "?")
        + "statement_cache_size=0&prepared_statement_cache_size=0&sslmode=disable"
        + "&allow_unencrypted_password=true"
    )
    try:
        for _ in range(3):  # each transaction may land on another server connection
            async with eng.begin() as conn:
                got = await conn.execute(
                    text("select cast(:a as int) + 1, cast(:b as text)"), {"a": 41, "b": "x"}
                )
                assert got.one() == (42, "x")
    finally:
        await eng.dispose()
