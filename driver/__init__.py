"""An asyncio PostgreSQL driver speaking the v3 wire protocol over TCP or WebSocket proxies."""

import typing as _typing

from . import errors, exceptions, types
from .batch import BatchResult
from .connect import connect
from .connection import Connection
from .errors import (
    AuthPolicyError,
    ConnectionLostError,
    Error,
    InterfaceError,
    PostgresError,
    ProtocolError,
    TransportError,
)
from .exceptions import *  # noqa: F403  (asyncpg's exception names at the top, as asyncpg)
from .params import Config, config
from .prepared import PreparedStatement
from .record import Record
from .serverversion import ServerVersion
from .transaction import Transaction
from .types import (
    Attribute,
    BitString,
    Box,
    Circle,
    Line,
    LineSegment,
    Path,
    Point,
    Polygon,
    Range,
    Type,
)

if _typing.TYPE_CHECKING:
    from .pool import Pool, create_pool

__all__ = [
    "Attribute",
    "AuthPolicyError",
    "BatchResult",
    "BitString",
    "Box",
    "Circle",
    "Config",
    "Connection",
    "ConnectionLostError",
    "Error",
    "InterfaceError",
    "Line",
    "LineSegment",
    "Path",
    "Point",
    "Polygon",
    "Pool",
    "PostgresError",
    "PreparedStatement",
    "ProtocolError",
    "Range",
    "Record",
    "ServerVersion",
    "Transaction",
    "TransportError",
    "Type",
    "config",
    "connect",
    "create_pool",
    "errors",
    "exceptions",
    "types",
]
__all__ += [n for n in exceptions.__all__ if n not in __all__]


# Imported on first use: a process that never opens a pool (a serverless handler with one
# connection, a browser page) does not pay for compiling and loading the pool modules.
_LAZY = {"Pool": "pool", "create_pool": "pool"}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
