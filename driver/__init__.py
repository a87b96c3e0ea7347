"""An asyncio PostgreSQL driver speaking the v3 wire protocol over TCP or WebSocket proxies."""

from . import errors
from .batch import BatchResult
from .connection import Connection
from .dsn import Config, config
from .errors import (
    ConnectionLostError,
    Error,
    InterfaceError,
    PostgresError,
    ProtocolError,
    TransportError,
)
from .pool import Pool, create_pool
from .prepared import PreparedStatement
from .record import Record
from .startup import connect
from .transaction import Transaction

__all__ = [
    "BatchResult",
    "Config",
    "Connection",
    "ConnectionLostError",
    "Error",
    "InterfaceError",
    "Pool",
    "PostgresError",
    "PreparedStatement",
    "ProtocolError",
    "Record",
    "Transaction",
    "TransportError",
    "config",
    "connect",
    "create_pool",
    "errors",
]
