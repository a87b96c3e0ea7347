"""SQL over HTTP: queries as single POSTs to a ``/sql`` endpoint (Neon's protocol, served by our
proxy with ``SQL_HTTP_LISTEN``), for one-shot work where a session's start-up would cost more
than the query.

``sql = driver.http.connect(dsn, endpoint="https://proxy.example/sql")`` makes no I/O; every
``await sql.fetch(...)`` is one HTTP request (one round trip on a kept-alive connection, no
authentication exchange in the client: the endpoint checks the credentials of the connection
string against Postgres). Results are the socket driver's: the same ``Record``s, the same
codecs (the endpoint answers with Postgres's text output and each column's type OID) and the
same exception classes (a Postgres error comes back with its SQLSTATE and fields).

Differences from a ``Connection``, inherent to the protocol: each call runs in its own
transaction on whichever pooled backend the endpoint lends, so session state (SET, temporary
tables, prepared statements) does not survive between calls; use ``transaction([...])`` for
several statements that must see each other. Parameters are sent as text with their type left
for the server to infer (``$1::date`` where the context does not say it).

On CPython the requests go through ``aiohttp`` (the ``http`` extra: ``pip install
'pgws[http]'``) with keep-alive, or ``httpx`` (``http_client="httpx"``; HTTP/2 when ``h2`` is
installed); under Pyodide through the browser's ``fetch``.
"""

# ruff: noqa: ASYNC109 - asyncpg's public API takes timeout= on every call
from __future__ import annotations

import functools
import json
import sys
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from .batch import BatchResult
from .codecs import TypeRegistry, default_registry
from .errors import InterfaceError, PostgresError, TransportError, lookup
from .record import Record, record_class
from .transaction import ISOLATION_LEVELS

if TYPE_CHECKING:
    import ssl

__all__ = ["HTTP_CLIENTS", "HTTPClient", "connect"]

# "auto": the browser's fetch under Pyodide; on CPython aiohttp when installed, else httpx.
HTTP_CLIENTS = ("auto", "aiohttp", "httpx", "fetch")

# node-postgres' DatabaseError keys (what the endpoint sends) -> PostgresError attributes.
_ERROR_ATTRS = {
    "code": "sqlstate",
    "severity": "severity",
    "detail": "detail",
    "hint": "hint",
    "position": "position",
    "internalPosition": "internal_position",
    "internalQuery": "internal_query",
    "where": "context",
    "schema": "schema_name",
    "table": "table_name",
    "column": "column_name",
    "dataType": "data_type_name",
    "constraint": "constraint_name",
    "file": "server_source_filename",
    "line": "server_source_line",
    "routine": "server_source_function",
}
# the driver's isolation names -> Neon-Batch-Isolation-Level values
_ISOLATION = {
    "serializable": "Serializable",
    "repeatable_read": "RepeatableRead",
    "read_committed": "ReadCommitted",
    "read_uncommitted": "ReadUncommitted",
}


class _Poster(Protocol):
    async def post(
        self, url: str, headers: dict[str, str], body: bytes, timeout: float | None
    ) -> tuple[int, bytes]: ...

    async def close(self) -> None: ...


class _AiohttpPoster:
    """CPython, the default: one aiohttp session, whose connections stay alive between calls
    (a quarter of httpx's CPU per request, which is most of a one-shot query's own cost)."""

    def __init__(self, verify: Any) -> None:
        try:
            import aiohttp
        except ImportError as exc:
            raise InterfaceError(
                "driver.http needs aiohttp (or httpx) on CPython: pip install 'pgws[http]'"
            ) from exc
        self._aiohttp = aiohttp
        self._ssl = _default_ssl_context() if verify is True else verify
        self._session: Any = None

    async def post(
        self, url: str, headers: dict[str, str], body: bytes, timeout: float | None
    ) -> tuple[int, bytes]:
        aiohttp = self._aiohttp
        if self._session is None:  # made inside the running loop, as aiohttp requires
            connector = aiohttp.TCPConnector(ssl=self._ssl)
            self._session = aiohttp.ClientSession(connector=connector)
        try:
            async with self._session.post(
                url, data=body, headers=headers, timeout=aiohttp.ClientTimeout(total=timeout)
            ) as response:
                return response.status, await response.read()
        except TimeoutError as exc:
            raise TimeoutError(f"SQL over HTTP to {url} timed out") from exc
        except aiohttp.ClientError as exc:
            raise TransportError(f"SQL over HTTP to {url} failed: {exc}") from exc

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


class _HTTPXPoster:
    """CPython with ``http_client="httpx"``: HTTP/2 when ``h2`` is installed (several
    concurrent queries share one connection), HTTP/1.1 keep-alive otherwise."""

    def __init__(self, verify: Any) -> None:
        try:
            import httpx
        except ImportError as exc:
            raise InterfaceError("http_client='httpx' needs httpx: pip install httpx") from exc
        from importlib.util import find_spec

        http2 = find_spec("h2") is not None
        self._httpx = httpx
        if verify is True:  # the system trust store, as wss:// uses; built once per process
            verify = _default_ssl_context()
        self._client = httpx.AsyncClient(http2=http2, verify=verify, timeout=None)

    async def post(
        self, url: str, headers: dict[str, str], body: bytes, timeout: float | None
    ) -> tuple[int, bytes]:
        try:
            r = await self._client.post(url, headers=headers, content=body, timeout=timeout)
        except self._httpx.TimeoutException as exc:
            raise TimeoutError(f"SQL over HTTP to {url} timed out") from exc
        except self._httpx.HTTPError as exc:
            raise TransportError(f"SQL over HTTP to {url} failed: {exc}") from exc
        return r.status_code, r.content

    async def close(self) -> None:
        await self._client.aclose()


def _poster(http_client: str, verify: Any) -> _Poster:
    if http_client == "fetch" or (http_client == "auto" and sys.platform == "emscripten"):
        return _FetchPoster()
    if http_client == "httpx":
        return _HTTPXPoster(verify)
    if http_client == "aiohttp":
        return _AiohttpPoster(verify)
    from importlib.util import find_spec

    return _AiohttpPoster(verify) if find_spec("aiohttp") else _HTTPXPoster(verify)


@functools.cache
def _default_ssl_context() -> ssl.SSLContext:
    """Loading the trust store costs milliseconds of CPU: a new client (a cold one-shot
    query) should not pay it again."""
    import ssl

    return ssl.create_default_context()


class _FetchPoster:
    """Pyodide: the page's fetch(); the browser keeps its connections alive itself."""

    async def post(
        self, url: str, headers: dict[str, str], body: bytes, timeout: float | None
    ) -> tuple[int, bytes]:
        import asyncio
        from importlib import import_module

        # Pyodide-only modules, untyped: reached by name, as the Pyodide transport does
        js: Any = import_module("js")
        ffi: Any = import_module("pyodide.ffi")
        JsException, to_js = ffi.JsException, ffi.to_js

        options = to_js(
            {"method": "POST", "headers": headers, "body": body.decode()},
            dict_converter=js.Object.fromEntries,
        )
        try:
            async with asyncio.timeout(timeout):
                response = await js.fetch(url, options)
                data = await response.arrayBuffer()
        except JsException as exc:
            raise TransportError(f"SQL over HTTP to {url} failed: {exc}") from exc
        return int(response.status), bytes(data.to_py())

    async def close(self) -> None:
        return None


class HTTPClient:
    """Queries over HTTP with the socket driver's methods and results (see the module doc)."""

    def __init__(
        self,
        dsn: str,
        endpoint: str,
        *,
        auth_token: str | None = None,
        timeout: float | None = 60.0,
        http_client: str = "auto",
        verify: Any = True,
    ) -> None:
        if not dsn.startswith(("postgres://", "postgresql://")):
            raise InterfaceError("dsn must be a postgres:// or postgresql:// URL")
        self._dsn = dsn
        self._endpoint = endpoint
        self._token = auth_token
        self._timeout = timeout
        self._codecs: TypeRegistry = default_registry.copy()
        if http_client not in HTTP_CLIENTS:
            raise InterfaceError(f"http_client must be one of {HTTP_CLIENTS}, got {http_client!r}")
        self._http_client = http_client
        self._poster: _Poster | None = None
        self._verify = verify
        self._closed = False

    # ---- the asyncpg-style methods ------------------------------------------------------

    async def fetch(self, query: str, *args: Any, timeout: float | None = None) -> list[Record]:
        return await self._one(query, args, timeout)

    async def fetchrow(self, query: str, *args: Any, timeout: float | None = None) -> Record | None:
        rows = await self._one(query, args, timeout)
        return rows[0] if rows else None

    async def fetchval(
        self, query: str, *args: Any, column: int = 0, timeout: float | None = None
    ) -> Any:
        row = await self.fetchrow(query, *args, timeout=timeout)
        return None if row is None else row[column]

    async def execute(self, query: str, *args: Any, timeout: float | None = None) -> str:
        """Run it and return the command tag (``"INSERT 0 1"``)."""
        return (await self._one(query, args, timeout)).status

    async def transaction(
        self,
        statements: Iterable[str | tuple[str, Sequence[Any]]],
        *,
        isolation: str | None = None,
        readonly: bool = False,
        deferrable: bool = False,
        timeout: float | None = None,
    ) -> list[BatchResult]:
        """Run the statements in one transaction, in one request: all commit or none does.

        Args:
            statements: SQL strings or ``(sql, args)`` pairs, as ``Connection.batch()`` takes.
            isolation: "serializable", "repeatable_read", "read_committed", "read_uncommitted".

        Returns:
            One ``BatchResult`` per statement (its rows; its command tag in ``.status``).

        Raises:
            PostgresError: the failing statement's error; nothing was committed.
        """
        if isolation is not None and isolation not in ISOLATION_LEVELS:
            raise InterfaceError(
                f"isolation must be one of {sorted(ISOLATION_LEVELS)}, got {isolation!r}"
            )
        queries = []
        for i, item in enumerate(statements):
            if isinstance(item, str):
                queries.append(self._query(item, ()))
            elif isinstance(item, tuple | list) and len(item) == 2 and isinstance(item[0], str):
                queries.append(self._query(item[0], item[1]))
            else:
                raise InterfaceError(
                    f"statement {i} must be a SQL string or a (sql, args) pair, got {item!r:.100}"
                )
        headers = {}
        if isolation is not None:
            headers["Neon-Batch-Isolation-Level"] = _ISOLATION[isolation]
        if readonly:
            headers["Neon-Batch-Read-Only"] = "true"
        if deferrable:
            headers["Neon-Batch-Deferrable"] = "true"
        doc = await self._post({"queries": queries}, headers, timeout)
        results = doc.get("results")
        if not isinstance(results, list) or len(results) != len(queries):
            raise InterfaceError("the endpoint answered a transaction without its results")
        return [self._result(r) for r in results]

    async def close(self) -> None:
        self._closed = True
        if self._poster is not None:
            await self._poster.close()

    def is_closed(self) -> bool:
        return self._closed

    async def __aenter__(self) -> HTTPClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"<HTTPClient endpoint={self._endpoint!r}>"

    # ---- one request ---------------------------------------------------------------------

    def _query(self, sql: str, args: Sequence[Any]) -> dict[str, Any]:
        """Encode before anything is sent, so a bad argument leaves no trace."""
        params: list[str | None] = []
        for i, value in enumerate(args):
            try:
                _, data = self._codecs.encode(value)
            except (TypeError, ValueError) as exc:
                raise InterfaceError(f"invalid argument ${i + 1} ({value!r:.100}): {exc}") from exc
            params.append(None if data is None else data.decode())
        return {"query": sql, "params": params}

    async def _one(self, query: str, args: Sequence[Any], timeout: float | None) -> BatchResult:
        return self._result(await self._post(self._query(query, args), {}, timeout))

    async def _post(
        self, body: dict[str, Any], extra: dict[str, str], timeout: float | None
    ) -> dict[str, Any]:
        if self._closed:
            raise InterfaceError("the HTTP client is closed")
        if self._poster is None:
            self._poster = _poster(self._http_client, self._verify)
        headers = {
            "Content-Type": "application/json",
            "Neon-Connection-String": self._dsn,
            "Neon-Raw-Text-Output": "true",
            "Neon-Array-Mode": "true",
            **extra,
        }
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        status, answer = await self._poster.post(
            self._endpoint, headers, data, timeout if timeout is not None else self._timeout
        )
        try:
            doc = json.loads(answer) if answer else {}
        except ValueError:
            doc = None
        if status == 200 and isinstance(doc, dict):
            return doc
        if status == 400 and isinstance(doc, dict) and doc.get("code"):
            query = body.get("query")
            raise _postgres_error(doc, query if isinstance(query, str) else None)
        reason = doc.get("message") if isinstance(doc, dict) else None
        reason = reason or answer.decode("utf-8", "replace")[:500].strip()
        if 400 <= status < 500:
            raise InterfaceError(f"the SQL endpoint refused the request (HTTP {status}): {reason}")
        raise TransportError(f"the SQL endpoint failed (HTTP {status}): {reason}")

    def _result(self, doc: Any) -> BatchResult:
        try:
            fields = doc["fields"]
            names = tuple(str(f["name"]) for f in fields)
            decoders = [self._codecs.decoder(int(f["dataTypeID"])) for f in fields]
            raw_rows = doc["rows"]
            command = str(doc.get("command") or "")
            count = doc.get("rowCount")
            tag = doc.get("commandTag")  # our proxy's addition; Neon's has command + count
        except (KeyError, TypeError, ValueError) as exc:
            raise InterfaceError(f"the SQL endpoint sent an unexpected result: {exc!r}") from exc
        cls = record_class(names)
        try:
            rows = [
                cls(
                    tuple(
                        None if v is None else d(v.encode())
                        for d, v in zip(decoders, row, strict=True)
                    )
                )
                for row in raw_rows
            ]
        except (ValueError, TypeError, ArithmeticError, AttributeError) as exc:
            raise InterfaceError(f"cannot decode a result value: {exc}") from exc
        result = BatchResult(rows)
        result.status = tag if isinstance(tag, str) else _tag(command, count)
        return result


def _tag(command: str, count: Any) -> str:
    """The command tag as the socket driver reports it, from Neon's command and rowCount."""
    if not isinstance(count, int):
        return command
    if command == "INSERT":
        return f"INSERT 0 {count}"
    return f"{command} {count}"


def _postgres_error(doc: dict[str, Any], query: str | None = None) -> PostgresError:
    fields = {attr: str(doc[key]) for key, attr in _ERROR_ATTRS.items() if doc.get(key) is not None}
    sqlstate = fields.get("sqlstate", "")
    if "severity" in fields:  # the endpoint sends one severity; asyncpg's errors carry both
        fields["severity_en"] = fields["severity"]
    return lookup(sqlstate)(str(doc.get("message", "")), query=query, **fields)


def connect(
    dsn: str,
    *,
    endpoint: str,
    auth_token: str | None = None,
    timeout: float | None = 60.0,
    http_client: str = "auto",
    verify: Any = True,
) -> HTTPClient:
    """A client for SQL over HTTP; nothing is sent until the first query.

    Args:
        dsn: ``postgresql://user:password@host:port/database`` as the endpoint's proxy reaches
            the database (the endpoint authenticates it against Postgres on every request).
        endpoint: the ``/sql`` URL, e.g. ``https://proxy.example.org/sql``.
        auth_token: sent as ``Authorization: Bearer`` (the proxy's SQL_HTTP_AUTH_TOKEN).
        timeout: seconds per request (None: no limit).
        http_client: "auto" (fetch under Pyodide; aiohttp on CPython, else httpx), or one
            of "aiohttp", "httpx" (HTTP/2 when h2 is installed), "fetch".
        verify: TLS certificate checks: True (the system trust store), False, or an
            ``ssl.SSLContext``.
    """
    return HTTPClient(
        dsn, endpoint, auth_token=auth_token, timeout=timeout, http_client=http_client,
        verify=verify,
    )  # fmt: skip
