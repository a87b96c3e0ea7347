"""PoolConnectionProxy: what a pool lends; it forwards to the connection until given back.

A task that keeps using a connection after releasing it would run its queries on a session
another task now holds. asyncpg closes that door with a proxy whose link to the connection
is cut on release; this is the same, with asyncpg's behaviour and messages.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .connection import Connection, ConnectionProxy
from .errors import InterfaceError

__all__ = ["PoolConnectionProxy"]

if TYPE_CHECKING:
    # For type checkers the proxy is a Connection, so code written as ``con: Connection =
    # await pool.acquire()`` type-checks (asyncpg-stubs give the proxy Connection's methods
    # but not its type: what they accept, this accepts too); at run time it holds one
    # instead, and isinstance() agrees through Connection's metaclass.
    _Face = Connection
else:
    _Face = object


class PoolConnectionProxy(ConnectionProxy, _Face):
    """A pooled connection as its borrower sees it (asyncpg's ``pool.PoolConnectionProxy``).

    Every public method of Connection is forwarded to the connection held; other
    attributes (a ``connection_class``'s own methods, say) are looked up on it. Once the
    pool takes the connection back (released, or closed while lent), each method raises
    asyncpg's ``InterfaceError("cannot call Connection.fetch(): connection has been
    released back to the pool")`` and each other attribute ``AttributeError``.
    """

    __slots__ = ("_con", "_pool")

    def __init__(self, pool: object, con: Connection) -> None:
        ConnectionProxy.__init__(self, type(con))
        self._con: Connection | None = con
        self._pool = pool  # the lender: Pool.release() takes back only its own proxies

    def _detach(self) -> Connection | None:
        """Cut the link (the pool took the connection back); the connection, if it was
        still held."""
        con, self._con = self._con, None
        return con

    if not TYPE_CHECKING:  # type checkers see Connection's attributes, not a catch-all

        def __getattr__(self, name: str) -> Any:
            con = self._con
            if con is None:
                raise AttributeError(
                    f"cannot get Connection.{name}: connection has been released back to the pool"
                )
            return getattr(con, name)

    def __repr__(self) -> str:
        con = self._con
        if con is None:
            return f"<{type(self).__name__} [released] {id(self):#x}>"
        return f"<{type(self).__name__} {con!r} {id(self):#x}>"


def _forward(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
    """A method of the proxy that calls ``name`` on the held connection, with the
    connection class's own override if it has one (docs and signature are Connection's)."""

    def call(self: PoolConnectionProxy, *args: Any, **kwargs: Any) -> Any:
        con = self._con
        if con is None:
            raise InterfaceError(
                f"cannot call Connection.{name}(): connection has been released back to the pool"
            )
        return getattr(con, name)(*args, **kwargs)

    functools.update_wrapper(call, method)
    mark = getattr(inspect, "markcoroutinefunction", None)  # Python 3.12+, as asyncpg's
    if mark is not None and inspect.iscoroutinefunction(method):
        mark(call)
    return call


def _forwarded_names() -> list[str]:
    """Connection's public methods (asyncpg's rule: functions, not properties)."""
    return [
        name
        for name, value in vars(Connection).items()
        if not name.startswith("_") and inspect.isfunction(value)
    ]


for _name in _forwarded_names():
    setattr(PoolConnectionProxy, _name, _forward(_name, getattr(Connection, _name)))
del _name
