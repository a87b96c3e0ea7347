"""asyncpg's exception names, so ``asyncpg.exceptions`` code needs one word changed.

``except driver.exceptions.UniqueViolationError:`` catches what asyncpg's name catches: the
same class per SQLSTATE, the same tree (``UniqueViolationError`` is an
``IntegrityConstraintViolationError`` is a ``PostgresError``), and asyncpg's client-side
classes (``InterfaceError``, ``InternalClientError``, ``OutdatedSchemaCacheError``, ...).
The classes live in :mod:`driver.errors`; this module only lists asyncpg's names, leaving out
the driver's older aliases (``UniqueViolation``) and its helpers.
"""

from __future__ import annotations

from . import errors as _errors
from .errors import *  # noqa: F403

# in driver.errors but not asyncpg names: older aliases, the lookup helper, a private base
_NOT_ASYNCPG = {
    "AdminShutdown", "AuthenticationError", "CardinalityViolation", "CheckViolation",
    "ConnectionException", "DeadlockDetected", "DivisionByZero", "DuplicateObject",
    "DuplicateTable", "FeatureNotSupported", "ForeignKeyViolation", "InFailedSQLTransaction",
    "InsufficientPrivilege", "InsufficientResources", "IntegrityConstraintViolation",
    "InvalidCachedStatement", "InvalidCatalogName", "InvalidPassword", "InvalidSQLStatementName",
    "InvalidTextRepresentation", "InvalidTransactionState", "NotNullViolation",
    "NumericValueOutOfRange", "ObjectNotInPrerequisiteState", "OperatorIntervention",
    "PostgresMessage", "ProgramLimitExceeded", "QueryCanceled", "SerializationFailure",
    "TransactionRollback", "UndefinedColumn", "UndefinedFunction", "UndefinedTable",
    "UniqueViolation", "lookup",
}  # fmt: skip

__all__ = [name for name in _errors.__all__ if name not in _NOT_ASYNCPG]
