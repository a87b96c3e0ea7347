"""Backend messages ("Message Formats"): one immutable, slotted class per message, declared
with ``@message`` as a dataclass would be.

``@message`` is not ``@dataclass(frozen=True, slots=True)``: dataclass builds each class by
``exec()`` of generated code, which made this module alone cost ~20 ms of every
``import driver``. The decorator builds the slotted class directly and gives it an
``__init__`` made from a closure per field count, which stores the values through the slots'
own descriptors (no ``exec``, no per-field loop); ``bench/`` has no figure for this, the
per-message cost is measured by ``tests/driver/test_messages.py``'s construction check.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, dataclass_transform

__all__ = ["BackendMessage", "message"]

_C = TypeVar("_C", bound=type)
_MISSING: Any = object()


def _make_init(names: tuple[str, ...], setters: tuple[Callable[[Any, Any], None], ...]) -> Any:
    """``__init__(self, *values)`` storing each value through its slot's descriptor.

    Positional arguments, the hot path (the parser builds every message so), cost one call
    per field; keywords take a slower path that maps them onto the same order.
    """

    def by_keyword(self: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        values = list(args) + [_MISSING] * (len(names) - len(args))
        if len(args) > len(names):
            raise TypeError(f"{type(self).__name__}() takes {len(names)} arguments")
        for key, value in kwargs.items():
            if key not in names or values[names.index(key)] is not _MISSING:
                raise TypeError(f"{type(self).__name__}() got an unexpected argument {key!r}")
            values[names.index(key)] = value
        if any(v is _MISSING for v in values):
            missing = [n for n, v in zip(names, values, strict=True) if v is _MISSING]
            raise TypeError(f"{type(self).__name__}() missing arguments: {', '.join(missing)}")
        for setter, value in zip(setters, values, strict=True):
            setter(self, value)

    n = len(names)
    if n == 1:
        (s0,) = setters

        def init1(self: Any, a: Any = _MISSING, /, **kw: Any) -> None:
            if kw or a is _MISSING:
                by_keyword(self, () if a is _MISSING else (a,), kw)
            else:
                s0(self, a)

        return init1
    if n == 2:
        s0, s1 = setters

        def init2(self: Any, a: Any = _MISSING, b: Any = _MISSING, /, **kw: Any) -> None:
            if kw or b is _MISSING:
                by_keyword(self, tuple(v for v in (a, b) if v is not _MISSING), kw)
            else:
                s0(self, a)
                s1(self, b)

        return init2
    if n == 3:
        s0, s1, s2 = setters

        def init3(
            self: Any, a: Any = _MISSING, b: Any = _MISSING, c: Any = _MISSING, /, **kw: Any
        ) -> None:
            if kw or c is _MISSING:
                by_keyword(self, tuple(v for v in (a, b, c) if v is not _MISSING), kw)
            else:
                s0(self, a)
                s1(self, b)
                s2(self, c)

        return init3

    if n == 7:  # Field, one per column of every RowDescription
        s0, s1, s2, s3, s4, s5, s6 = setters

        def init7(self: Any, *args: Any, **kw: Any) -> None:
            if kw or len(args) != 7:
                by_keyword(self, args, kw)
            else:
                a, b, c, d, e, f, g = args
                s0(self, a)
                s1(self, b)
                s2(self, c)
                s3(self, d)
                s4(self, e)
                s5(self, f)
                s6(self, g)

        return init7

    def init(self: Any, *args: Any, **kw: Any) -> None:
        if kw or len(args) != n:
            by_keyword(self, args, kw)
        else:
            for setter, value in zip(setters, args, strict=True):
                setter(self, value)

    return init


@dataclass_transform(frozen_default=True, eq_default=True)
def message(cls: _C) -> _C:
    """Give a message class (slotted by ``_MessageMeta``) its ``__init__``: positional and
    keyword construction over its fields, the base classes' first, as a dataclass orders
    them; value equality, a hash and a ``repr`` come from ``_Message``."""
    names: tuple[str, ...] = vars(cls)["__match_args__"]
    if vars(cls).get("__annotations__"):  # no fields of its own: the base's __init__ serves
        setters = tuple(getattr(cls, name).__set__ for name in names)
        type.__setattr__(cls, "__init__", _make_init(names, setters))
    return cls


class _MessageMeta(type):
    """Makes each message class slotted, its fields (its annotations) in ``__slots__`` and,
    after its bases' fields, in ``__match_args__``, at class creation: building the class
    once, where rebuilding it in the decorator would cost every ``import driver``."""

    def __new__(mcs, name: str, bases: tuple[type, ...], namespace: dict[str, Any]) -> _MessageMeta:
        if "__slots__" not in namespace:
            own = tuple(namespace.get("__annotations__", {}))
            inherited: tuple[str, ...] = getattr(bases[0], "__match_args__", ()) if bases else ()
            namespace["__slots__"] = own
            namespace["__match_args__"] = inherited + own
        return super().__new__(mcs, name, bases, namespace)


class _Message(metaclass=_MessageMeta):
    """Value semantics shared by every backend message, over its fields in ``__match_args__``."""

    __slots__ = ()
    __match_args__: ClassVar[tuple[str, ...]] = ()

    def _astuple(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self.__match_args__)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._astuple() == other._astuple()

    def __hash__(self) -> int:
        return hash(self._astuple())

    def __repr__(self) -> str:
        args = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__match_args__)
        return f"{type(self).__name__}({args})"

    if not TYPE_CHECKING:  # hidden from mypy, which would then allow any attribute name

        def __setattr__(self, name: str, value: object) -> None:
            raise AttributeError(f"cannot assign to field {name!r} of {type(self).__name__}")

        def __delattr__(self, name: str) -> None:
            raise AttributeError(f"cannot delete field {name!r} of {type(self).__name__}")


@message
class _Bytes(_Message):
    """The shape of the messages that carry one opaque payload (SASL data, CopyData)."""

    data: bytes


@message
class _Fields(_Message):
    """The shape of ErrorResponse and NoticeResponse: the fields by their one-letter codes."""

    fields: dict[str, str]


@message
class _CopyResponse(_Message):
    """The shape of CopyInResponse and CopyOutResponse: overall and per-column formats."""

    format: int
    column_formats: tuple[int, ...]


@message
class AuthenticationOk(_Message):
    CODE = 0  # its AuthenticationRequest code (not a field: no annotation)


@message
class AuthenticationCleartextPassword(_Message):
    CODE = 3  # its AuthenticationRequest code (not a field: no annotation)


@message
class AuthenticationMD5Password(_Message):
    CODE = 5  # its AuthenticationRequest code (not a field: no annotation)
    salt: bytes


@message
class AuthenticationSASL(_Message):
    CODE = 10  # its AuthenticationRequest code (not a field: no annotation)
    mechanisms: tuple[str, ...]


@message
class AuthenticationSASLContinue(_Bytes):
    CODE = 11  # its AuthenticationRequest code (not a field: no annotation)


@message
class AuthenticationSASLFinal(_Bytes):
    CODE = 12  # its AuthenticationRequest code (not a field: no annotation)


@message
class AuthenticationOther(_Message):
    """Kerberos, SCM, GSS, SSPI: methods this driver does not implement."""

    code: int


@message
class BackendKeyData(_Message):
    pid: int
    key: int


@message
class ParameterStatus(_Message):
    name: str
    value: str


@message
class ReadyForQuery(_Message):
    status: str  # "I" idle, "T" in a transaction block, "E" in a failed one


@message
class Field(_Message):
    name: str
    table_oid: int
    column: int
    type_oid: int
    type_size: int
    type_modifier: int
    format: int


@message
class RowDescription(_Message):
    fields: tuple[Field, ...]


@message
class DataRow(_Message):
    values: tuple[bytes | None, ...]


@message
class CommandComplete(_Message):
    tag: str


@message
class EmptyQueryResponse(_Message):
    pass


@message
class ErrorResponse(_Fields):
    pass


@message
class NoticeResponse(_Fields):
    pass


@message
class NotificationResponse(_Message):
    pid: int
    channel: str
    payload: str


@message
class ParseComplete(_Message):
    pass


@message
class BindComplete(_Message):
    pass


@message
class CloseComplete(_Message):
    pass


@message
class NoData(_Message):
    pass


@message
class PortalSuspended(_Message):
    pass


@message
class ParameterDescription(_Message):
    type_oids: tuple[int, ...]


@message
class CopyInResponse(_CopyResponse):
    pass


@message
class CopyOutResponse(_CopyResponse):
    pass


@message
class CopyData(_Bytes):
    pass


@message
class CopyDone(_Message):
    pass


@message
class NegotiateProtocolVersion(_Message):
    newest_minor: int
    unsupported: tuple[str, ...]


BackendMessage = (
    AuthenticationOk | AuthenticationCleartextPassword | AuthenticationMD5Password
    | AuthenticationSASL | AuthenticationSASLContinue | AuthenticationSASLFinal
    | AuthenticationOther | BackendKeyData | ParameterStatus | ReadyForQuery | RowDescription
    | DataRow | CommandComplete | EmptyQueryResponse | ErrorResponse | NoticeResponse
    | NotificationResponse | ParseComplete | BindComplete | CloseComplete | NoData
    | PortalSuspended | ParameterDescription | CopyInResponse | CopyOutResponse | CopyData
    | CopyDone | NegotiateProtocolVersion
)  # fmt: skip
