"""The states of a conversation, and NEED_DATA: the values PGProtocol and its callers share."""

from __future__ import annotations

import enum

__all__ = ["NEED_DATA", "State"]


class State(enum.Enum):
    """Where the conversation is ("Message Flow"); PGProtocol documents each move."""

    STARTUP = "STARTUP"
    AUTH = "AUTH"
    READY = "READY"
    BUSY = "BUSY"
    COPY_IN = "COPY_IN"
    COPY_OUT = "COPY_OUT"
    FAILED = "FAILED"
    CLOSED = "CLOSED"


class _NeedData:
    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA = _NeedData()
