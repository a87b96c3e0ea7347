"""Sans-I/O PostgreSQL v3 protocol: bytes in, events out; requests in, bytes out."""

from .core import NEED_DATA, NeedData, PGProtocol, State

__all__ = ["NEED_DATA", "NeedData", "PGProtocol", "State"]
