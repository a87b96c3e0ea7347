"""Record: a result row as a tuple, indexable by position and by column name.

asyncpg's rules hold: ``Record`` itself cannot be instantiated (rows come from queries), a
``record_class=`` must be a subclass of it that does not redefine ``__new__`` or
``__init__``, and with duplicate column names every value stays in place while lookup by
name finds the last one (``select 1 as a, 2 as a`` gives ``r["a"] == 2``).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any, ClassVar, overload

from .errors import InterfaceError

__all__ = ["Record", "check_record_class", "record_class"]


class Record(tuple[Any, ...]):
    """One row. Behaves as a tuple of values; ``row["name"]`` looks a column up by name.

    Each distinct (column names, record class) pair gets one cached subclass holding the
    name->index map, so a row costs a plain tuple allocation and no per-row dict. That
    subclass takes the record class's name, so ``repr()`` shows ``<MyRecord a=1>``.
    """

    __slots__ = ()
    _names: ClassVar[tuple[str, ...]] = ()
    _index: ClassVar[dict[str, int]] = {}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Only the per-shape subclasses (record_class() below) make rows. They set
        # object.__init__ back, a slot wrapper CPython calls as C: no Python frame per row.
        cls = type(self)
        raise TypeError(f"cannot create '{cls.__module__}.{cls.__qualname__}' instances")

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
        name = type(self).__name__
        return f"<{name} {body}>" if body else f"<{name}>"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        # asyncpg's rows cannot be pickled; a pickled per-shape class would not load anyway
        raise TypeError(f"cannot pickle {type(self).__name__} objects")


def check_record_class(cls: object) -> type[Record]:
    """``cls`` if it may be a ``record_class=`` (asyncpg's rule and messages).

    Raises:
        InterfaceError: not a Record subclass, or one that redefines __new__ or __init__
            (rows are made without calling them).
    """
    if cls is Record:
        return Record
    if not isinstance(cls, type) or not issubclass(cls, Record):
        raise InterfaceError(
            f"record_class is expected to be a subclass of asyncpg.Record (driver.Record), "
            f"got {cls!r}"
        )
    if cls.__new__ is not Record.__new__ or cls.__init__ is not Record.__init__:
        raise InterfaceError("record_class must not redefine __new__ or __init__")
    return cls


@functools.lru_cache(maxsize=512)
def record_class(names: tuple[str, ...], base: type[Record] = Record) -> type[Record]:
    """The row class for one result shape and record class (the last column of a name
    wins lookups, as in asyncpg)."""
    index = {name: i for i, name in enumerate(names)}
    namespace = {
        "__slots__": (),
        "__init__": object.__init__,
        "__module__": base.__module__,
        "__qualname__": base.__qualname__,
        "_names": names,
        "_index": index,
    }
    return type(base.__name__, (base,), namespace)
