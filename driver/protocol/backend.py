"""Backend messages ("Message Formats"): one immutable class per message.

The classes are written out rather than made with ``@dataclass(frozen=True, slots=True)``:
they behave the same (fields by position or keyword, ``==`` by type and fields, a hash, a
``repr``, assignment refused), but dataclass builds each class by ``exec()`` of generated
code, which made this module alone cost ~20 ms of every ``import driver``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

_set = object.__setattr__


class _Message:
    """Value semantics shared by every backend message, over its fields in ``__match_args__``
    (the positional order, as a dataclass has it; ``__slots__`` may list them in any order)."""

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


class _Bytes(_Message):
    """The shape of the messages that carry one opaque payload (SASL data, CopyData)."""

    __slots__ = __match_args__ = ("data",)
    data: bytes

    def __init__(self, data: bytes) -> None:
        _set(self, "data", data)


class _Fields(_Message):
    """The shape of ErrorResponse and NoticeResponse: the fields by their one-letter codes."""

    __slots__ = __match_args__ = ("fields",)
    fields: dict[str, str]

    def __init__(self, fields: dict[str, str]) -> None:
        _set(self, "fields", fields)


class _CopyResponse(_Message):
    """The shape of CopyInResponse and CopyOutResponse: overall and per-column formats."""

    __slots__ = __match_args__ = ("format", "column_formats")
    format: int
    column_formats: tuple[int, ...]

    def __init__(self, format: int, column_formats: tuple[int, ...]) -> None:
        _set(self, "format", format)
        _set(self, "column_formats", column_formats)


class AuthenticationOk(_Message):
    __slots__ = ()


class AuthenticationCleartextPassword(_Message):
    __slots__ = ()


class AuthenticationMD5Password(_Message):
    __slots__ = __match_args__ = ("salt",)
    salt: bytes

    def __init__(self, salt: bytes) -> None:
        _set(self, "salt", salt)


class AuthenticationSASL(_Message):
    __slots__ = __match_args__ = ("mechanisms",)
    mechanisms: tuple[str, ...]

    def __init__(self, mechanisms: tuple[str, ...]) -> None:
        _set(self, "mechanisms", mechanisms)


class AuthenticationSASLContinue(_Bytes):
    __slots__ = ()


class AuthenticationSASLFinal(_Bytes):
    __slots__ = ()


class AuthenticationOther(_Message):
    """Kerberos, SCM, GSS, SSPI: methods this driver does not implement."""

    __slots__ = __match_args__ = ("code",)
    code: int

    def __init__(self, code: int) -> None:
        _set(self, "code", code)


class BackendKeyData(_Message):
    __slots__ = __match_args__ = ("pid", "key")
    pid: int
    key: int

    def __init__(self, pid: int, key: int) -> None:
        _set(self, "pid", pid)
        _set(self, "key", key)


class ParameterStatus(_Message):
    __slots__ = __match_args__ = ("name", "value")
    name: str
    value: str

    def __init__(self, name: str, value: str) -> None:
        _set(self, "name", name)
        _set(self, "value", value)


class ReadyForQuery(_Message):
    __slots__ = __match_args__ = ("status",)
    status: str  # "I" idle, "T" in a transaction block, "E" in a failed one

    def __init__(self, status: str) -> None:
        _set(self, "status", status)


class Field(_Message):
    __slots__ = ("column", "format", "name", "table_oid", "type_modifier", "type_oid", "type_size")
    __match_args__ = (
        "name",
        "table_oid",
        "column",
        "type_oid",
        "type_size",
        "type_modifier",
        "format",
    )
    name: str
    table_oid: int
    column: int
    type_oid: int
    type_size: int
    type_modifier: int
    format: int

    def __init__(
        self,
        name: str,
        table_oid: int,
        column: int,
        type_oid: int,
        type_size: int,
        type_modifier: int,
        format: int,
    ) -> None:
        _set(self, "name", name)
        _set(self, "table_oid", table_oid)
        _set(self, "column", column)
        _set(self, "type_oid", type_oid)
        _set(self, "type_size", type_size)
        _set(self, "type_modifier", type_modifier)
        _set(self, "format", format)


class RowDescription(_Message):
    __slots__ = __match_args__ = ("fields",)
    fields: tuple[Field, ...]

    def __init__(self, fields: tuple[Field, ...]) -> None:
        _set(self, "fields", fields)


class DataRow(_Message):
    __slots__ = __match_args__ = ("values",)
    values: tuple[bytes | None, ...]

    def __init__(self, values: tuple[bytes | None, ...]) -> None:
        _set(self, "values", values)


class CommandComplete(_Message):
    __slots__ = __match_args__ = ("tag",)
    tag: str

    def __init__(self, tag: str) -> None:
        _set(self, "tag", tag)


class EmptyQueryResponse(_Message):
    __slots__ = ()


class ErrorResponse(_Fields):
    __slots__ = ()


class NoticeResponse(_Fields):
    __slots__ = ()


class NotificationResponse(_Message):
    __slots__ = __match_args__ = ("pid", "channel", "payload")
    pid: int
    channel: str
    payload: str

    def __init__(self, pid: int, channel: str, payload: str) -> None:
        _set(self, "pid", pid)
        _set(self, "channel", channel)
        _set(self, "payload", payload)


class ParseComplete(_Message):
    __slots__ = ()


class BindComplete(_Message):
    __slots__ = ()


class CloseComplete(_Message):
    __slots__ = ()


class NoData(_Message):
    __slots__ = ()


class PortalSuspended(_Message):
    __slots__ = ()


class ParameterDescription(_Message):
    __slots__ = __match_args__ = ("type_oids",)
    type_oids: tuple[int, ...]

    def __init__(self, type_oids: tuple[int, ...]) -> None:
        _set(self, "type_oids", type_oids)


class CopyInResponse(_CopyResponse):
    __slots__ = ()


class CopyOutResponse(_CopyResponse):
    __slots__ = ()


class CopyData(_Bytes):
    __slots__ = ()


class CopyDone(_Message):
    __slots__ = ()


class NegotiateProtocolVersion(_Message):
    __slots__ = __match_args__ = ("newest_minor", "unsupported")
    newest_minor: int
    unsupported: tuple[str, ...]

    def __init__(self, newest_minor: int, unsupported: tuple[str, ...]) -> None:
        _set(self, "newest_minor", newest_minor)
        _set(self, "unsupported", unsupported)


BackendMessage = (
    AuthenticationOk | AuthenticationCleartextPassword | AuthenticationMD5Password
    | AuthenticationSASL | AuthenticationSASLContinue | AuthenticationSASLFinal
    | AuthenticationOther | BackendKeyData | ParameterStatus | ReadyForQuery | RowDescription
    | DataRow | CommandComplete | EmptyQueryResponse | ErrorResponse | NoticeResponse
    | NotificationResponse | ParseComplete | BindComplete | CloseComplete | NoData
    | PortalSuspended | ParameterDescription | CopyInResponse | CopyOutResponse | CopyData
    | CopyDone | NegotiateProtocolVersion
)  # fmt: skip
