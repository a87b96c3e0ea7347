"""The driver's exception tree, and the SQLSTATE -> class lookup for server errors."""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "AdminShutdown",
    "AuthPolicyError",
    "AuthenticationError",
    "CardinalityViolation",
    "CheckViolation",
    "ConnectionException",
    "ConnectionLostError",
    "DataError",
    "DeadlockDetected",
    "DivisionByZero",
    "DuplicateObject",
    "DuplicateTable",
    "Error",
    "FeatureNotSupported",
    "ForeignKeyViolation",
    "InFailedSQLTransaction",
    "InsufficientPrivilege",
    "InsufficientResources",
    "IntegrityConstraintViolation",
    "InterfaceError",
    "InternalServerError",
    "InvalidCachedStatement",
    "InvalidCatalogName",
    "InvalidPassword",
    "InvalidSQLStatementName",
    "InvalidTextRepresentation",
    "InvalidTransactionState",
    "NotNullViolation",
    "NumericValueOutOfRange",
    "ObjectNotInPrerequisiteState",
    "OperatorIntervention",
    "PLPGSQLError",
    "PostgresError",
    "PostgresSyntaxError",
    "ProgramLimitExceeded",
    "ProtocolError",
    "QueryCanceled",
    "SerializationFailure",
    "SyntaxOrAccessError",
    "TransactionRollback",
    "TransportError",
    "UndefinedColumn",
    "UndefinedFunction",
    "UndefinedTable",
    "UniqueViolation",
    "lookup",
]


class Error(Exception):
    """Base of everything the driver raises on purpose."""


class InterfaceError(Error):
    """The caller misused the driver: closed connection, concurrent use, bad argument."""


class ProtocolError(Error):
    """The server (or the proxy in front of it) sent bytes the driver cannot accept."""


# -- authentication policy (driver.auth.policy decides; these say why it refused) -----------


class AuthPolicyError(InterfaceError):
    """The client refused the server's way of authenticating (nothing secret was sent).

    ``needs_encryption`` is True when the same request would be accepted over TLS, so that
    ``sslmode=allow`` may retry with TLS, as libpq retries after an authentication failure.
    """

    def __init__(self, message: str, *, needs_encryption: bool = False) -> None:
        super().__init__(message)
        self.needs_encryption = needs_encryption


# -- transport ------------------------------------------------------------------------------


class TransportError(Error):
    """DNS, TCP, WebSocket upgrade or TLS failed before or under the Postgres conversation."""


class ConnectionLostError(TransportError):
    """The stream died during an operation.

    ``unsent`` is true only when the driver knows the server never processed the operation
    (the write failed, or the server had already announced its shutdown), so that a pool may
    safely retry it on another connection.
    """

    def __init__(self, message: str, *, unsent: bool = False) -> None:
        super().__init__(message)
        self.unsent = unsent


# ErrorResponse field codes ("Error and Notice Message Fields" in the PostgreSQL docs).
_FIELDS = {
    "S": "severity_localized",
    "V": "severity",
    "C": "sqlstate",
    "M": "message",
    "D": "detail",
    "H": "hint",
    "P": "position",
    "p": "internal_position",
    "q": "internal_query",
    "W": "context",
    "s": "schema_name",
    "t": "table_name",
    "c": "column_name",
    "d": "data_type_name",
    "n": "constraint_name",
    "F": "server_source_filename",
    "L": "server_source_line",
    "R": "server_source_function",
}

_BY_SQLSTATE: dict[str, type[PostgresError]] = {}


class PostgresError(Error):
    """An ErrorResponse from the server; attributes mirror its fields (None when absent)."""

    sqlstate: str | None = None
    severity: str | None = None
    severity_localized: str | None = None
    message: str = ""
    detail: str | None = None
    hint: str | None = None
    position: str | None = None
    internal_position: str | None = None
    internal_query: str | None = None
    context: str | None = None
    schema_name: str | None = None
    table_name: str | None = None
    column_name: str | None = None
    data_type_name: str | None = None
    constraint_name: str | None = None
    server_source_filename: str | None = None
    server_source_line: str | None = None
    server_source_function: str | None = None

    _sqlstate: ClassVar[str | None] = None

    def __init_subclass__(cls, sqlstate: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if sqlstate is not None:
            cls._sqlstate = sqlstate
            _BY_SQLSTATE[sqlstate] = cls

    def __init__(self, message: str = "", **fields: str | None) -> None:
        super().__init__(message)
        self.message = message
        for name, value in fields.items():
            setattr(self, name, value)

    @classmethod
    def from_fields(cls, fields: dict[str, str]) -> PostgresError:
        """Build the most specific subclass for an ErrorResponse's field dict."""
        code = fields.get("C", "")
        kwargs = {_FIELDS[k]: v for k, v in fields.items() if k in _FIELDS and k != "M"}
        return lookup(code)(fields.get("M", ""), **kwargs)

    def as_dict(self) -> dict[str, str]:
        return {
            name: value
            for name in ("sqlstate", "severity", "message", "detail", "hint", "position")
            if (value := getattr(self, name)) is not None
        }

    def __str__(self) -> str:
        text = self.message
        if self.detail:
            text += f"\nDETAIL:  {self.detail}"
        if self.hint:
            text += f"\nHINT:  {self.hint}"
        return text


def lookup(sqlstate: str) -> type[PostgresError]:
    """The class for a SQLSTATE: exact code, else its two-character class, else PostgresError."""
    return _BY_SQLSTATE.get(sqlstate) or _BY_SQLSTATE.get(sqlstate[:2]) or PostgresError


# One fallback per SQLSTATE class (Appendix A, "PostgreSQL Error Codes").
class ConnectionException(PostgresError, sqlstate="08"): ...


class FeatureNotSupported(PostgresError, sqlstate="0A"): ...


class CardinalityViolation(PostgresError, sqlstate="21"): ...


class DataError(PostgresError, sqlstate="22"): ...


class IntegrityConstraintViolation(PostgresError, sqlstate="23"): ...


class InvalidTransactionState(PostgresError, sqlstate="25"): ...


class InvalidSQLStatementName(PostgresError, sqlstate="26"): ...


class AuthenticationError(PostgresError, sqlstate="28"): ...


class InvalidCatalogName(PostgresError, sqlstate="3D"): ...


class TransactionRollback(PostgresError, sqlstate="40"): ...


class SyntaxOrAccessError(PostgresError, sqlstate="42"): ...


class InsufficientResources(PostgresError, sqlstate="53"): ...


class ProgramLimitExceeded(PostgresError, sqlstate="54"): ...


class ObjectNotInPrerequisiteState(PostgresError, sqlstate="55"): ...


class OperatorIntervention(PostgresError, sqlstate="57"): ...


class InternalServerError(PostgresError, sqlstate="XX"): ...


class PLPGSQLError(PostgresError, sqlstate="P0"): ...


# The specific codes applications actually catch.
class InvalidCachedStatement(FeatureNotSupported):
    """A cached statement went stale inside a transaction block, where it cannot be retried."""


class NumericValueOutOfRange(DataError, sqlstate="22003"): ...


class DivisionByZero(DataError, sqlstate="22012"): ...


class InvalidTextRepresentation(DataError, sqlstate="22P02"): ...


class NotNullViolation(IntegrityConstraintViolation, sqlstate="23502"): ...


class ForeignKeyViolation(IntegrityConstraintViolation, sqlstate="23503"): ...


class UniqueViolation(IntegrityConstraintViolation, sqlstate="23505"): ...


class CheckViolation(IntegrityConstraintViolation, sqlstate="23514"): ...


class InFailedSQLTransaction(InvalidTransactionState, sqlstate="25P02"): ...


class InvalidPassword(AuthenticationError, sqlstate="28P01"): ...


class SerializationFailure(TransactionRollback, sqlstate="40001"): ...


class DeadlockDetected(TransactionRollback, sqlstate="40P01"): ...


class InsufficientPrivilege(SyntaxOrAccessError, sqlstate="42501"): ...


class PostgresSyntaxError(SyntaxOrAccessError, sqlstate="42601"): ...


class UndefinedColumn(SyntaxOrAccessError, sqlstate="42703"): ...


class UndefinedFunction(SyntaxOrAccessError, sqlstate="42883"): ...


class UndefinedTable(SyntaxOrAccessError, sqlstate="42P01"): ...


class DuplicateTable(SyntaxOrAccessError, sqlstate="42P07"): ...


class DuplicateObject(SyntaxOrAccessError, sqlstate="42710"): ...


class QueryCanceled(OperatorIntervention, sqlstate="57014"): ...


class AdminShutdown(OperatorIntervention, sqlstate="57P01"): ...
