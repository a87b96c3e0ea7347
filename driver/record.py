"""Record: a result row as a tuple, indexable by position and by column name."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any, ClassVar, overload

__all__ = ["Record", "record_class"]


class Record(tuple[Any, ...]):
    """One row. Behaves as a tuple of values; ``row["name"]`` looks a column up by name.

    Each distinct list of column names gets one cached subclass holding the name->index map,
    so a row costs a plain tuple allocation and no per-row dict.
    """

    __slots__ = ()
    _names: ClassVar[tuple[str, ...]] = ()
    _index: ClassVar[dict[str, int]] = {}

    @overload  # type: ignore[override]
    def __getitem__(self, key: int | str) -> Any: ...
    @overload
    def __getitem__(self, key: slice) -> tuple[Any, ...]: ...
    def __getitem__(self, key: int | str | slice) -> Any:
        if isinstance(key, str):
            try:
                key = self._index[key]
            except KeyError:
                raise KeyError(key) from None
        return tuple.__getitem__(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        i = self._index.get(key)
        return default if i is None else tuple.__getitem__(self, i)

    def keys(self) -> Iterator[str]:
        return iter(self._names)

    def values(self) -> Iterator[Any]:
        return tuple.__iter__(self)

    def items(self) -> Iterator[tuple[str, Any]]:
        return zip(self._names, tuple.__iter__(self), strict=True)

    def __contains__(self, key: object) -> bool:
        # asyncpg semantics: membership tests column names, like a mapping.
        return key in self._index

    def __repr__(self) -> str:
        body = " ".join(f"{n}={v!r}" for n, v in self.items())
        return f"<Record {body}>" if body else "<Record>"


@functools.lru_cache(maxsize=512)
def record_class(names: tuple[str, ...]) -> type[Record]:
    """The Record subclass for one result shape (first occurrence wins for duplicate names)."""
    index: dict[str, int] = {}
    for i, name in enumerate(names):
        index.setdefault(name, i)
    return type("Record", (Record,), {"__slots__": (), "_names": names, "_index": index})
