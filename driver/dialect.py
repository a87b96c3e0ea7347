"""The SQLAlchemy dialect ``postgresql+pgws``: SQLAlchemy's asyncpg machinery over this driver.

The driver's public API is asyncpg's, so SQLAlchemy's asyncpg adapter (prepared statements,
server-side cursors, transactions with isolation / read-only / deferrable, the statement
cache) drives it unchanged. What differs, and lives here:

- exceptions are mapped to DB-API classes by SQLSTATE (what PEP 249 and psycopg do), not by
  asyncpg's class names; network failures (``TransportError``, a connection lost) are
  ``OperationalError`` and count as disconnects;
- JSON/JSONB codecs are text-format (this driver speaks the text format);
- connection options (``ws_proxy``, ``use_secure_websocket``, ``sslmode``,
  ``statement_cache_size``, ``pipeline_connect``, ...) come from the URL query or
  ``connect_args``, with their types restored from the URL's strings;
- nothing imports asyncpg.

Value types need nothing here: the adapter reaches them through ``dbapi.asyncpg``, which is the
``driver`` module, so its processors convert SQLAlchemy's ``Range`` / ``MultiRange`` and
``BitString`` to and from ``driver.Range`` and ``driver.BitString`` as they do asyncpg's.

Registered through the ``sqlalchemy.dialects`` entry point, so after ``pip install
'pgws[sqlalchemy]'``::

    create_async_engine("postgresql+pgws://user:pw@db.internal/app?ws_proxy=proxy.example.org/v2")
    create_engine("postgresql+pgws://...")   # sync, through SQLAlchemy's greenlet adapter
"""

from __future__ import annotations

import json as _json
from collections.abc import Callable
from typing import Any, NoReturn

from sqlalchemy import util
from sqlalchemy.dialects.postgresql.asyncpg import (
    AsyncAdapt_asyncpg_connection,
    AsyncAdapt_asyncpg_cursor,
    AsyncAdapt_asyncpg_dbapi,
    AsyncAdapt_asyncpg_ss_cursor,
    PGDialect_asyncpg,
)
from sqlalchemy.engine.url import URL
from sqlalchemy.util.concurrency import await_

from . import errors

_BOOL_OPTIONS = frozenset(
    {"use_secure_websocket", "wait_ready", "allow_unencrypted_password", "direct_tls"}
)
_INT_OPTIONS = frozenset(
    {"statement_cache_size", "max_cacheable_statement_size", "prepared_statement_cache_size"}
)
_FLOAT_OPTIONS = frozenset(
    {"connect_timeout", "command_timeout", "timeout", "max_cached_statement_lifetime"}
)
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}

# SQLSTATE class -> DB-API exception name (PEP 249; the same split as psycopg's).
_BY_CLASS = {
    "08": "OperationalError",  # connection exception
    "0A": "NotSupportedError",
    "21": "ProgrammingError",  # cardinality violation
    "22": "DataError",
    "23": "IntegrityError",
    "24": "InternalError",  # invalid cursor state
    "25": "InternalError",  # invalid transaction state
    "26": "InternalError",
    "27": "OperationalError",
    "28": "OperationalError",  # invalid authorization
    "2B": "InternalError",
    "2D": "InternalError",
    "2F": "InternalError",
    "34": "OperationalError",
    "38": "InternalError",
    "39": "InternalError",
    "3B": "InternalError",
    "3D": "ProgrammingError",
    "3F": "ProgrammingError",
    "40": "OperationalError",  # transaction rollback (serialization, deadlock)
    "42": "ProgrammingError",
    "44": "ProgrammingError",
    "53": "OperationalError",
    "54": "OperationalError",
    "55": "OperationalError",
    "57": "OperationalError",
    "58": "OperationalError",
    "72": "OperationalError",
    "F0": "InternalError",
    "HV": "OperationalError",
    "P0": "InternalError",
    "XX": "InternalServerError",
}
# Exact codes SQLAlchemy's adapter has a class of its own for.
_BY_CODE = {
    "23001": "RestrictViolationError",
    "23502": "NotNullViolationError",
    "23503": "ForeignKeyViolationError",
    "23505": "UniqueViolationError",
    "23514": "CheckViolationError",
    "23P01": "ExclusionViolationError",
}


def _dbapi_class(dbapi: Any, error: BaseException) -> Any:
    """The DB-API exception class for one of the driver's errors."""
    if isinstance(error, errors.InvalidCachedStatement):
        return dbapi.InvalidCachedStatementError
    if isinstance(error, errors.PostgresError):
        code = error.sqlstate or ""
        name = _BY_CODE.get(code) or _BY_CLASS.get(code[:2], "DatabaseError")
        return getattr(dbapi, name)
    if isinstance(error, errors.TransportError | errors.ProtocolError):
        return dbapi.OperationalError
    if isinstance(error, errors.InterfaceError):
        return dbapi.InterfaceError
    if isinstance(error, errors.Error):
        return dbapi.DatabaseError
    return None


def _disconnected(error: BaseException | None) -> bool:
    return isinstance(error, errors.TransportError | errors.ProtocolError) or (
        isinstance(error, errors.InterfaceError) and "closed" in str(error)
    )


class AsyncAdapt_pgws_cursor(AsyncAdapt_asyncpg_cursor):
    __slots__ = ()


class AsyncAdapt_pgws_ss_cursor(AsyncAdapt_asyncpg_ss_cursor):
    __slots__ = ()


class AsyncAdapt_pgws_connection(AsyncAdapt_asyncpg_connection):
    _cursor_cls = AsyncAdapt_pgws_cursor
    _ss_cursor_cls = AsyncAdapt_pgws_ss_cursor
    __slots__ = ()

    @classmethod
    def _handle_exception_no_connection(cls, dbapi: Any, error: Exception) -> NoReturn:
        target = None if isinstance(error, dbapi.Error) else _dbapi_class(dbapi, error)
        if target is not None:
            raise target(str(error) or type(error).__name__, error) from error
        raise error


class AsyncAdapt_pgws_dbapi(AsyncAdapt_asyncpg_dbapi):
    """The DB-API face of the driver (PEP 249 names, exceptions, ``connect``)."""

    def connect(self, *arg: Any, **kw: Any) -> AsyncAdapt_pgws_connection:
        creator_fn: Callable[..., Any] = kw.pop("async_creator_fn", self.asyncpg.connect)
        cache_size = kw.pop("prepared_statement_cache_size", 100)
        name_func = kw.pop("prepared_statement_name_func", None)
        return await_(
            AsyncAdapt_pgws_connection.create(
                self,
                creator_fn(*arg, **kw),
                prepared_statement_cache_size=cache_size,
                prepared_statement_name_func=name_func,
            )
        )

    @util.memoized_property
    def _asyncpg_error_translate(self) -> dict[type[BaseException], Any]:
        # Only consulted by code paths that walk an error's MRO; ours map by SQLSTATE.
        return {}


class PGDialect_pgws(PGDialect_asyncpg):
    """``postgresql+pgws``: async by nature; sync engines run it through greenlets."""

    driver = "pgws"
    supports_statement_cache = True

    @classmethod
    def import_dbapi(cls) -> AsyncAdapt_pgws_dbapi:  # type: ignore[override]
        import driver

        return AsyncAdapt_pgws_dbapi(driver)  # type: ignore[no-untyped-call]

    @classmethod
    def load_provisioning(cls) -> None:
        """SQLAlchemy's test harness looks for ``<dialect package>.provision``; PostgreSQL's
        own provisioning hooks (temp tables, schemas, follower databases) serve this dialect."""
        import sqlalchemy.dialects.postgresql.provision  # noqa: F401

    def create_connect_args(self, url: URL) -> tuple[list[Any], dict[str, Any]]:
        args, opts = super().create_connect_args(url)  # type: ignore[no-untyped-call]
        for key, value in list(opts.items()):
            if not isinstance(value, str):
                continue
            if key in _BOOL_OPTIONS:
                low = value.lower()
                if low not in _TRUE | _FALSE:
                    raise ValueError(f"{key}={value!r}: expected true or false")
                opts[key] = low in _TRUE
            elif key in _INT_OPTIONS:
                opts[key] = int(value)
            elif key in _FLOAT_OPTIONS:
                opts[key] = float(value)
        return args, opts

    def is_disconnect(self, e: Any, connection: Any, cursor: Any) -> bool:
        orig = getattr(e, "orig", e)
        if _disconnected(orig) or _disconnected(getattr(orig, "__cause__", None)):
            return True
        if connection is not None:
            return bool(connection._connection.is_closed())
        return False

    async def setup_asyncpg_json_codec(self, conn: Any) -> None:
        deserializer = self._json_deserializer or _json.loads
        await conn._connection.set_type_codec(
            "json", encoder=str, decoder=deserializer, schema="pg_catalog", format="text"
        )

    async def setup_asyncpg_jsonb_codec(self, conn: Any) -> None:
        deserializer = self._json_deserializer or _json.loads
        await conn._connection.set_type_codec(
            "jsonb", encoder=str, decoder=deserializer, schema="pg_catalog", format="text"
        )


dialect = PGDialect_pgws
