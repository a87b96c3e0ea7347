"""Client-side checks of query arguments, made before anything is sent, with asyncpg's errors.

A bad argument list must fail where the caller made it, with the message asyncpg gives, not
as a protocol error from the server naming an internal statement (and after a round trip).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from .errors import DataError, InterfaceError

__all__ = ["check_arg_count", "executemany_rows"]


def check_arg_count(expected: int, passed: int) -> None:
    """Refuse an argument list whose length is not the statement's parameter count.

    Raises:
        InterfaceError: ``the server expects 1 argument for this query, 0 were passed``.
    """
    if expected != passed:
        s = "" if expected == 1 else "s"
        verb = "was" if passed == 1 else "were"
        raise InterfaceError(
            f"the server expects {expected} argument{s} for this query, {passed} {verb} passed"
        )


def executemany_rows(args: Iterable[Any]) -> Iterator[Sequence[Any]]:
    """Yield ``executemany()``'s argument rows, refusing any that is not a sequence.

    A dict, set or string row would otherwise be read by iteration (``{1: 0}`` as ``(1,)``)
    and insert something the caller never wrote. Errors raised by the iterable itself (a
    generator that fails) pass through unchanged, as in asyncpg.

    Raises:
        DataError: ``invalid input in executemany() argument sequence element #1: expected a
            sequence, got dict``.
    """
    for i, row in enumerate(args):
        if type(row) is not tuple and type(row) is not list:  # those two: no ABC check
            if not isinstance(row, Sequence) or isinstance(row, str | bytes | bytearray):
                raise DataError(
                    f"invalid input in executemany() argument sequence element #{i}: "
                    f"expected a sequence, got {type(row).__name__}"
                )
        yield row
