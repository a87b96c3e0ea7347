"""Warm backend connections for SQL over HTTP: one pool per (host, port, database, role), a
connection reused only by a request presenting the credentials it was opened with.

This is the one place where proxy/ imports from the repository: the endpoint needs a Postgres
client, and ``driver`` is the reference implementation of the protocol (used through its public
API, imported only when the endpoint is enabled). The relay itself still imports nothing.

Credentials are compared as HMAC-SHA256 digests under a per-process random key: a pooled
connection remembers the digest of the password it authenticated with, never the password,
and a request whose digest differs (a wrong password after a right one) opens, and so
authenticates, a connection of its own.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import driver
from driver.codecs import TypeRegistry, default_registry

from .neon import ConnInfo, Query

log = logging.getLogger("proxy.sql")

_KEY = secrets.token_bytes(32)

PoolKey = tuple[str, int, str, str]  # host, port, database, role


def credential_digest(info: ConnInfo) -> bytes:
    """Keyed so that a digest seen in memory cannot be tested against guessed passwords."""
    material = "\0".join((info.host, str(info.port), info.database, info.user, info.password))
    return hmac.digest(_KEY, material.encode("utf-8", "surrogatepass"), hashlib.sha256)


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace")


class _TextResults(TypeRegistry):
    """Results stay Postgres's text output (what neon() parses with its own type parsers);
    parameters are encoded as the driver always does (str values, type left to the server)."""

    __slots__ = ()

    def decoder(self, oid: int) -> Any:
        return _text


class TextConnection(driver.Connection):
    """A driver Connection whose results are left as Postgres text."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        registry = default_registry.copy()
        registry.__class__ = _TextResults
        self._session.codecs = registry  # the session decodes with this table


@dataclass(slots=True)
class _Idle:
    conn: TextConnection
    digest: bytes
    since: float


@dataclass(slots=True)
class Pool:
    """Idle connections of one key, most recent last; `busy` counts those lent out."""

    key: PoolKey
    idle: list[_Idle] = field(default_factory=list)
    busy: int = 0
    freed: asyncio.Condition = field(default_factory=asyncio.Condition)
    resetting: dict[bytes, int] = field(default_factory=dict)  # digest -> backends in reset


class RequestTimeout(Exception):
    """The statements ran past the request's deadline and were cancelled."""


class PoolFull(Exception):
    """No connection became free within the wait: answered 503."""


@dataclass(frozen=True, slots=True)
class Settings:
    max_size: int = 10
    idle_timeout: float = 60.0
    connect_timeout: float = 10.0
    statement_timeout: float = 30.0
    acquire_timeout: float = 5.0
    reset_timeout: float = 5.0
    sslmode: str = "prefer"


@dataclass(slots=True)
class Outcome:
    results: list[driver.BatchResult]
    reused: bool


class Backends:
    """All pools of the process; run() lends a connection, runs the queries, resets it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.pools: dict[PoolKey, Pool] = {}
        self.opened = 0  # connections ever opened, for metrics and tests
        self._releasing: set[asyncio.Task[None]] = set()

    def _pool(self, key: PoolKey) -> Pool:
        pool = self.pools.get(key)
        if pool is None:
            pool = self.pools[key] = Pool(key)
        return pool

    def total_idle(self) -> int:
        return sum(len(p.idle) for p in self.pools.values())

    async def _open(self, info: ConnInfo, ip: str) -> TextConnection:
        s = self.settings
        settings = {"application_name": "pgws-sql-http"}
        if s.statement_timeout:
            settings["statement_timeout"] = str(int(s.statement_timeout * 1000))
        conn = await driver.connect(
            host=ip,  # the checked address, never the name again (no DNS-rebinding window)
            port=info.port,
            user=info.user,
            password=info.password,  # "" rather than None: never the proxy's own PGPASSWORD
            database=info.database,
            sslmode=s.sslmode,
            # The proxy-to-Postgres leg is the operator's network, as for the relay (TLS is
            # still used when the server offers it): md5 and cleartext roles must work.
            allow_unencrypted_password=True,
            statement_cache_size=0,
            server_settings=settings,
            timeout=s.connect_timeout or None,
            connection_class=TextConnection,
        )
        self.opened += 1
        assert isinstance(conn, TextConnection)
        return conn

    async def _acquire(
        self, pool: Pool, info: ConnInfo, digest: bytes, ips: Sequence[str]
    ) -> tuple[TextConnection, bool]:
        """An idle connection opened with the same credentials, else a new one (which makes
        the server check them). Waits, up to acquire_timeout, while the pool is full."""
        s = self.settings
        item: _Idle | None = None
        async with asyncio.timeout(s.acquire_timeout or None), pool.freed:
            while True:
                item = _take(pool, digest)
                if item is None and pool.resetting.get(digest):
                    await pool.freed.wait()  # a backend of this caller's is nearly back
                    continue
                if item is not None or not s.max_size or pool.busy + len(pool.idle) < s.max_size:
                    break
                if pool.idle:  # the room is held by another credential's idle connection
                    await _close(pool.idle.pop(0).conn)
                    continue
                await pool.freed.wait()
            pool.busy += 1
        now = asyncio.get_running_loop().time()
        while item is not None:
            if not item.conn.is_closed() and now - item.since <= s.idle_timeout:
                return item.conn, True
            await _close(item.conn)
            item = _take(pool, digest)
        try:
            return await self._open_first(info, ips), False
        except BaseException:
            await self._give_back(pool)
            raise

    async def _open_first(self, info: ConnInfo, ips: Sequence[str]) -> TextConnection:
        """Try the checked addresses in resolver order; the last failure is raised."""
        error: BaseException | None = None
        for ip in ips:
            try:
                return await self._open(info, ip)
            except driver.TransportError as exc:
                error = exc
        assert error is not None
        raise error

    async def _give_back(self, pool: Pool, item: _Idle | None = None) -> None:
        async with pool.freed:
            pool.busy -= 1
            if item is not None:
                pool.idle.append(item)
            pool.freed.notify_all()

    async def run(
        self,
        info: ConnInfo,
        ips: Sequence[str],
        queries: Sequence[Query],
        *,
        batch: bool,
        isolation: str | None,
        readonly: bool,
        deferrable: bool,
    ) -> Outcome:
        """Run one request's statements on a pooled connection (one round trip to Postgres).

        Raises:
            driver.PostgresError: from the server (login refused included), connection kept.
            RequestTimeout: past the request's deadline; cancelled, the connection dropped.
            driver.Error, TimeoutError: the connection is dropped.
            PoolFull: no connection for this key became free in time.
        """
        key: PoolKey = (info.host, info.port, info.database, info.user)
        digest = credential_digest(info)
        pool = self._pool(key)
        for attempt in (0, 1):
            try:
                conn, reused = await self._acquire(pool, info, digest, ips)
            except TimeoutError:
                raise PoolFull(f"all {self.settings.max_size} connections busy") from None
            try:
                return await self._use(pool, conn, digest, reused, queries, batch,
                                       (isolation, readonly, deferrable))  # fmt: skip
            except driver.ConnectionLostError as exc:
                # A warm backend that died while idle (server restart, idle timeout): the
                # statements never reached it, so one retry on a new backend is safe.
                if not (reused and exc.unsent and attempt == 0):
                    raise
                log.info("sql backend lost while idle, retrying on a new one: %s", exc)
        raise AssertionError("unreachable")

    async def _use(
        self,
        pool: Pool,
        conn: TextConnection,
        digest: bytes,
        reused: bool,
        queries: Sequence[Query],
        batch: bool,
        options: tuple[str | None, bool, bool],
    ) -> Outcome:
        isolation, readonly, deferrable = options
        # statement_timeout can be lifted by the statements themselves (SET LOCAL in a
        # batch): this deadline (the driver cancels the query at it) cannot.
        limit = self.settings.statement_timeout
        deadline = limit * len(queries) + 1.0 if limit else None
        keep = False
        try:
            statements = [(q.sql, q.params) for q in queries]
            if batch:
                results = await conn.batch(
                    statements,
                    transaction=True,
                    isolation=isolation,
                    readonly=readonly,
                    deferrable=deferrable,
                    timeout=deadline,
                )
            else:
                results = await conn.batch(statements, transaction=False, timeout=deadline)
            keep = True
            return Outcome(results, reused)
        except driver.PostgresError:
            keep = True
            raise
        except TimeoutError:
            raise RequestTimeout(f"the request ran past its {deadline:g} s deadline") from None
        finally:
            # The reset runs after the answer leaves, off the caller's latency; this
            # caller's next request waits for it rather than open a second backend.
            pool.resetting[digest] = pool.resetting.get(digest, 0) + 1
            task = asyncio.create_task(self._release(pool, conn, digest, keep))
            self._releasing.add(task)
            task.add_done_callback(self._releasing.discard)

    async def _release(self, pool: Pool, conn: TextConnection, digest: bytes, keep: bool) -> None:
        item: _Idle | None = None
        try:
            if keep and await self._reset(conn):
                item = _Idle(conn, digest, asyncio.get_running_loop().time())
            else:
                await _close(conn)
        finally:
            left = pool.resetting.get(digest, 1) - 1
            if left:
                pool.resetting[digest] = left
            else:
                pool.resetting.pop(digest, None)
            await self._give_back(pool, item)

    async def _reset(self, conn: TextConnection) -> bool:
        """Leave nothing of this request for the next: an open transaction, SET, temporary
        tables, advisory locks, prepared statements, LISTEN (DISCARD ALL covers all but the
        transaction, which it refuses to run in)."""
        if conn.is_closed():
            return False
        try:
            async with asyncio.timeout(self.settings.reset_timeout or None):
                if conn.is_in_transaction():
                    await conn.execute("ROLLBACK")
                await conn.execute("DISCARD ALL")
        except (driver.Error, TimeoutError) as exc:
            log.info("sql backend dropped: reset failed: %s", exc)
            return False
        return True

    async def sweep(self) -> None:
        """Close connections idle longer than the idle timeout (called periodically)."""
        now = asyncio.get_running_loop().time()
        for key, pool in list(self.pools.items()):
            stale = [i for i in pool.idle if now - i.since > self.settings.idle_timeout]
            if stale:
                pool.idle = [i for i in pool.idle if i not in stale]
                for item in stale:
                    await _close(item.conn)
            if not pool.idle and not pool.busy and not pool.resetting:
                del self.pools[key]

    async def close(self) -> None:
        await asyncio.gather(*self._releasing, return_exceptions=True)
        for pool in self.pools.values():
            for item in pool.idle:
                await _close(item.conn)
            pool.idle.clear()
        self.pools.clear()


def _take(pool: Pool, digest: bytes) -> _Idle | None:
    for i in range(len(pool.idle) - 1, -1, -1):
        if pool.idle[i].digest == digest:
            return pool.idle.pop(i)
    return None


async def _close(conn: driver.Connection) -> None:
    try:
        await conn.close(timeout=2)
    except (driver.Error, OSError, TimeoutError) as exc:
        log.debug("closing a backend: %s", exc)
