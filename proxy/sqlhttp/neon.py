"""The wire shapes of Neon's SQL-over-HTTP protocol: request headers and body in, JSON out.

Pure functions, no I/O: what ``neon()`` of ``@neondatabase/serverless`` 1.2 sends (a POST with
``Neon-Connection-String`` and a JSON body ``{"query", "params"}`` or ``{"queries": [...]}``)
and what it reads back (``fields``/``rows``/``command``/``rowCount``, ``results`` for a batch,
and on HTTP 400 the Postgres error fields under node-postgres' names).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

__all__ = [
    "BadRequest",
    "ConnInfo",
    "Query",
    "SQLRequest",
    "error_body",
    "parse_connection_string",
    "parse_request",
    "result_body",
]

# Neon-Batch-Isolation-Level values (the names of Neon's proxy) -> the driver's names.
ISOLATION = {
    "Serializable": "serializable",
    "RepeatableRead": "repeatable_read",
    "ReadCommitted": "read_committed",
    "ReadUncommitted": "read_uncommitted",
}

# driver.PostgresError attribute -> the key node-postgres' DatabaseError (and neon()) reads.
ERROR_KEYS = {
    "severity_localized": "severity",
    "sqlstate": "code",
    "detail": "detail",
    "hint": "hint",
    "position": "position",
    "internal_position": "internalPosition",
    "internal_query": "internalQuery",
    "context": "where",
    "schema_name": "schema",
    "table_name": "table",
    "column_name": "column",
    "data_type_name": "dataType",
    "constraint_name": "constraint",
    "server_source_filename": "file",
    "server_source_line": "line",
    "server_source_function": "routine",
}


class BadRequest(Exception):
    """The request cannot be run as sent: answered with `status` and a JSON message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class ConnInfo:
    """Who asks for what: the parts of the connection string the proxy acts on."""

    host: str  # without brackets
    port: int
    user: str
    password: str
    database: str

    @property
    def target(self) -> str:
        """host:port as the allow-list sees it (IPv6 bracketed, as on the WebSocket path)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class Query:
    sql: str
    params: tuple[str | None, ...]


@dataclass(frozen=True, slots=True)
class SQLRequest:
    conn: ConnInfo
    queries: tuple[Query, ...]
    batch: bool  # {"queries": [...]}: one transaction, answered as {"results": [...]}
    array_mode: bool
    isolation: str | None
    readonly: bool
    deferrable: bool


def parse_connection_string(text: str) -> ConnInfo:
    """``postgres[ql]://user:password@host[:port]/database[?...]``; the query part is ignored.

    Raises:
        BadRequest: 400 when a part is missing or malformed.
    """
    try:
        url = urlsplit(text.strip())
        port = url.port or 5432
    except ValueError as exc:
        raise BadRequest(400, f"malformed Neon-Connection-String: {exc}") from None
    if url.scheme not in ("postgres", "postgresql"):
        raise BadRequest(400, "Neon-Connection-String must be a postgres:// URL")
    if not url.hostname:
        raise BadRequest(400, "Neon-Connection-String has no host")
    if not url.username:
        raise BadRequest(400, "Neon-Connection-String has no user")
    user = unquote(url.username)
    database = unquote(url.path.lstrip("/")) or user
    return ConnInfo(url.hostname, port, user, unquote(url.password or ""), database)


def _param(value: Any) -> str | None:
    """A parameter as Postgres text; neon() sends strings and nulls already (pg's
    prepareValue), other JSON values are accepted the way a Postgres text input reads them."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _query(obj: Any, where: str) -> Query:
    if not isinstance(obj, dict) or not isinstance(obj.get("query"), str):
        raise BadRequest(400, f"{where}: expected an object with a string 'query'")
    params = obj.get("params", [])
    if params is None:
        params = []
    if not isinstance(params, list):
        raise BadRequest(400, f"{where}: 'params' must be an array")
    return Query(obj["query"], tuple(_param(p) for p in params))


def _flag(headers: Mapping[str, str], name: str) -> bool:
    value = headers.get(name.lower(), "false").strip().lower()
    if value not in ("true", "false"):
        raise BadRequest(400, f"{name} must be true or false")
    return value == "true"


def parse_request(headers: Mapping[str, str], body: bytes) -> SQLRequest:
    """Headers (lower-case names) and the JSON body -> what to run.

    Raises:
        BadRequest: 400 with the first problem found.
    """
    dsn = headers.get("neon-connection-string")
    if not dsn:
        raise BadRequest(400, "missing Neon-Connection-String header")
    conn = parse_connection_string(dsn)
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(400, f"request body is not JSON: {exc}") from None
    if isinstance(doc, dict) and "queries" in doc:
        items = doc["queries"]
        if not isinstance(items, list):
            raise BadRequest(400, "'queries' must be an array")
        queries = tuple(_query(q, f"queries[{i}]") for i, q in enumerate(items))
        batch = True
    else:
        queries, batch = (_query(doc, "body"),), False
    level = headers.get("neon-batch-isolation-level")
    if level is not None and level not in ISOLATION:
        raise BadRequest(400, f"Neon-Batch-Isolation-Level must be one of {', '.join(ISOLATION)}")
    return SQLRequest(
        conn=conn,
        queries=queries,
        batch=batch,
        array_mode=_flag(headers, "Neon-Array-Mode"),
        isolation=ISOLATION[level] if level else None,
        readonly=_flag(headers, "Neon-Batch-Read-Only"),
        deferrable=_flag(headers, "Neon-Batch-Deferrable"),
    )


def _row_count(tag: str) -> int | None:
    """The count in a command tag ("INSERT 0 3" -> 3, "SELECT 2" -> 2, "CREATE TABLE" -> None)."""
    last = tag.rpartition(" ")[2]
    return int(last) if last.isdigit() and " " in tag else None


def result_body(
    fields: Sequence[Any], rows: Sequence[Sequence[str | None]], tag: str, array_mode: bool
) -> dict[str, Any]:
    """One statement's result the way neon() parses it; `fields` are driver Field objects."""
    described = [
        {
            "name": f.name,
            "tableID": f.table_oid,
            "columnID": f.column,
            "dataTypeID": f.type_oid,
            "dataTypeSize": f.type_size,
            "dataTypeModifier": f.type_modifier,
            "format": "text",
        }
        for f in fields
    ]
    if array_mode:
        out_rows: list[Any] = [list(r) for r in rows]
    else:
        names = [f.name for f in fields]
        out_rows = [dict(zip(names, r, strict=True)) for r in rows]
    return {
        "fields": described,
        "command": tag.partition(" ")[0],
        "rowCount": _row_count(tag),
        "rows": out_rows,
        "rowAsArray": array_mode,
        "commandTag": tag,  # ours: the whole tag ("CREATE TABLE"), which driver.http returns
    }


def error_body(exc: Any) -> dict[str, Any]:
    """A driver PostgresError as node-postgres' DatabaseError fields (neon() copies them)."""
    body: dict[str, Any] = {"message": exc.message}
    for attr, key in ERROR_KEYS.items():
        value = getattr(exc, attr, None)
        if value is not None:
            body[key] = value
    return body
