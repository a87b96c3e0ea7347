"""The playground's Python side, run by Pyodide in the visitor's browser.

It holds one connection for the page's lifetime, opened on first use, so the first query pays
for the WebSocket, the proxy's TCP connect and SCRAM, and later ones cost one round trip.
Results go back to JavaScript as JSON text, which avoids proxying Python objects into JS.

A browser cannot see a connection die while it sits idle (nothing reads it), so before each
run a connection that has been idle is checked with one round trip and reopened if the server
ended it: the visitor's code never meets a connection the server already closed.
"""

from __future__ import annotations

import ast
import datetime
import decimal
import inspect
import io
import json
import linecache
import math
import struct
import sys
import time
import traceback
from contextlib import redirect_stderr, redirect_stdout
from typing import Any

import driver

NEAREST_SQL = """
SELECT id_no, name_en, states_name_en,
       ST_Y(location::geometry) AS latitude,
       ST_X(location::geometry) AS longitude,
       round((location <-> ST_SetSRID(ST_MakePoint($1, $2), 4326)::geography)::numeric, 1)
           AS distance_m
FROM whc_sites
ORDER BY location <-> ST_SetSRID(ST_MakePoint($1, $2), 4326)::geography
LIMIT $3
"""
SOURCE_NAME = "<playground>"
# A connection idle for longer than this is checked (one round trip) before the next SQL run;
# Python runs always check, since visitor code cannot be replayed after a failure.
IDLE_CHECK_S = 0.5
# SQLSTATEs saying the server ended the session: the statement never ran, so retrying is safe.
SESSION_ENDED = {"57P01", "57P02", "57P03", "08000", "08003", "08006"}
_GEO_TYPES = "SELECT oid::int, typname FROM pg_type WHERE typname IN ('geometry', 'geography')"


def _number(x: float) -> str:
    return "NaN" if math.isnan(x) else format(x, ".15g")


def _ewkb(data: bytes, pos: int) -> tuple[str, int]:
    """One (E)WKB geometry at `pos` as WKT, and where it ends."""
    order = data[pos]
    if order not in (0, 1):
        raise ValueError("not WKB")
    end = "<" if order == 1 else ">"
    (code,) = struct.unpack_from(end + "I", data, pos + 1)
    pos += 5
    if code & 0x20000000:  # EWKB: an SRID follows (shown by the column type, not repeated)
        pos += 4
    dims = 2 + bool(code & 0x80000000) + bool(code & 0x40000000)
    kind = code & 0x0FFFFFFF
    kind, iso_dims = kind % 1000, {0: 0, 1: 1, 2: 1, 3: 2}[kind // 1000]
    dims += iso_dims
    name = {
        1: "POINT",
        2: "LINESTRING",
        3: "POLYGON",
        4: "MULTIPOINT",
        5: "MULTILINESTRING",
        6: "MULTIPOLYGON",
        7: "GEOMETRYCOLLECTION",
    }[kind]

    def points(p: int) -> tuple[str, int]:
        (n,) = struct.unpack_from(end + "I", data, p)
        p += 4
        coords = struct.unpack_from(end + "d" * (n * dims), data, p)
        text = ", ".join(
            " ".join(_number(c) for c in coords[i : i + dims]) for i in range(0, len(coords), dims)
        )
        return f"({text})", p + 8 * n * dims

    if kind == 1:
        coords = struct.unpack_from(end + "d" * dims, data, pos)
        pos += 8 * dims
        if all(math.isnan(c) for c in coords):
            return "POINT EMPTY", pos
        return f"POINT({' '.join(_number(c) for c in coords)})", pos
    if kind == 2:
        text, pos = points(pos)
        return name + text, pos
    (n,) = struct.unpack_from(end + "I", data, pos)
    pos += 4
    parts = []
    for _ in range(n):
        if kind == 3:
            text, pos = points(pos)
        else:
            text, pos = _ewkb(data, pos)
            text = text if kind == 7 else text[text.index("(") :]
        parts.append(text)
    return f"{name}({', '.join(parts)})", pos


def wkt(hex_text: str) -> str | None:
    """PostGIS's hex EWKB (its text output) as readable WKT, or None when it is not that."""
    if len(hex_text) < 18 or len(hex_text) % 2:
        return None
    try:
        data = bytes.fromhex(hex_text)
        text, end = _ewkb(data, 0)
    except (ValueError, KeyError, IndexError, struct.error):
        return None
    return text if end == len(data) else None


def _jsonable(value: Any) -> Any:
    if isinstance(value, decimal.Decimal | datetime.date | datetime.time | datetime.timedelta):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return "\\x" + bytes(value).hex()
    return str(value)


def _looks_like_ewkb(value: str) -> bool:
    return value[:2] in ("00", "01") and all(c in "0123456789ABCDEF" for c in value[:18])


def _table(records: list[Any], columns: list[str], geo: set[int], limit: int) -> dict[str, Any]:
    """Rows as JSON-ready lists; geometry columns (by index) as WKT."""
    rows = []
    for r in records[:limit]:
        row = list(r.values())
        for i, v in enumerate(row):
            if isinstance(v, str) and (i in geo or (not geo and _looks_like_ewkb(v))):
                row[i] = wkt(v) or v
        rows.append(row)
    return {
        "columns": columns,
        "rows": rows,
        "row_count": len(records),
        "truncated": len(records) > limit,
    }


def _is_records(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(hasattr(r, "keys") and hasattr(r, "values") and isinstance(r, tuple) for r in value)
    )


class Playground:
    """The page's session: one connection, SQL in a read-only transaction, Python code run
    with `conn` in a namespace kept between runs (like a notebook)."""

    def __init__(self, config_json: str) -> None:
        config = json.loads(config_json)
        self.dsn: str = config["database_url"]
        self.ws_proxy: str = config["ws_proxy"]
        self.use_secure_websocket: bool = bool(config["use_secure_websocket"])
        self.row_limit: int = int(config["row_limit"])
        self._conn: Any = None
        self._used = 0.0  # when the connection last answered
        self._geo_oids: set[int] = set()
        self.namespace: dict[str, Any] = {"driver": driver, "__name__": "__main__"}
        self.reconnects = 0

    @staticmethod
    def python_version() -> str:
        return sys.version.split()[0]

    async def _open(self) -> Any:
        self._conn = await driver.connect(
            self.dsn, ws_proxy=self.ws_proxy, use_secure_websocket=self.use_secure_websocket
        )
        self._geo_oids = {oid for oid, _ in await self._conn.fetch(_GEO_TYPES)}
        self._used = time.monotonic()
        return self._conn

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.terminate()
            except Exception:  # already gone: nothing left to release
                pass

    async def _connection(self, *, check: bool = False) -> tuple[Any, bool]:
        """An open connection, and whether it was opened for this call."""
        conn = self._conn
        if conn is not None and not conn.is_closed():
            if not check and time.monotonic() - self._used < IDLE_CHECK_S:
                return conn, False
            try:
                await conn.execute("SELECT 1")
                self._used = time.monotonic()
                return conn, False
            except (driver.Error, OSError):
                # The server ended the idle session (restart, idle timeout, terminate): reopen.
                self.reconnects += 1
                await self._drop()
        return await self._open(), True

    async def run(self, sql: str, args_json: str = "[]") -> str:
        """Run one statement and return {columns, rows, truncated, timings} as JSON text.

        Column names come from the statement's description, so a result with no rows still
        has its headers. Errors come back as {"error": ..., "sqlstate": ...}.
        """
        args = json.loads(args_json)
        for attempt in (1, 2):
            t0 = time.perf_counter()
            try:
                conn, fresh = await self._connection()
                t1 = time.perf_counter()
                # Read-only even if the role's default were changed: belt and braces.
                async with conn.transaction(readonly=True):
                    stmt = await conn.prepare(sql)
                    records = await stmt.fetch(*args)
                t2 = time.perf_counter()
                self._used = time.monotonic()
            except driver.PostgresError as exc:
                if exc.sqlstate in SESSION_ENDED and attempt == 1:
                    await self._drop()
                    continue
                return json.dumps({"error": exc.message, "sqlstate": exc.sqlstate})
            except driver.Error as exc:
                await self._drop()
                if attempt == 1:
                    continue
                return json.dumps({"error": str(exc), "sqlstate": None})
            fields = stmt.get_attributes()
            geo = {i for i, f in enumerate(fields) if f.type.oid in self._geo_oids}
            result = _table(records, [f.name for f in fields], geo or {-1}, self.row_limit)
            result["connect_ms"] = (t1 - t0) * 1000 if fresh else None
            result["query_ms"] = (t2 - t1) * 1000
            return json.dumps(result, default=_jsonable)
        raise AssertionError("unreachable")

    async def nearest(self, longitude: float, latitude: float, limit: int = 10) -> str:
        """The app's nearest-sites query, run from the browser."""
        return await self.run(NEAREST_SQL, json.dumps([longitude, latitude, limit]))

    async def run_python(self, code: str) -> str:
        """Run the visitor's code with `conn` ready and top-level await allowed.

        Returns JSON: what it printed, the last expression's value (a table when it is a list
        of records), and for an exception a traceback of the visitor's own frames plus the
        SQLSTATE when Postgres refused something.
        """
        out = io.StringIO()
        result: dict[str, Any] = {"output": "", "error": None, "sqlstate": None, "value": None}
        t0 = time.perf_counter()
        try:
            conn, fresh = await self._connection(check=True)
        except (driver.Error, OSError) as exc:
            result["error"] = f"cannot connect: {exc}"
            return json.dumps(result)
        t1 = time.perf_counter()
        self.namespace["conn"] = conn
        lines = code.splitlines(keepends=True)
        linecache.cache[SOURCE_NAME] = (len(code), None, lines, SOURCE_NAME)
        flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
        try:
            with redirect_stdout(out), redirect_stderr(out):
                tree = ast.parse(code, SOURCE_NAME, "exec")
                last = None
                tail = tree.body[-1] if tree.body else None
                if isinstance(tail, ast.Expr):
                    tree.body.pop()
                    last = ast.Expression(tail.value)
                body = eval(compile(tree, SOURCE_NAME, "exec", flags=flags), self.namespace)
                if inspect.iscoroutine(body):
                    await body
                if last is not None:
                    value = eval(compile(last, SOURCE_NAME, "eval", flags=flags), self.namespace)
                    if inspect.iscoroutine(value):
                        value = await value
                    if _is_records(value):
                        table = _table(value, list(value[0].keys()), set(), self.row_limit)
                        result["value"] = table
                    elif value is not None:
                        print(repr(value))
        except Exception as exc:
            tb = exc.__traceback__
            # Drop this module's frames: the visitor's code starts at the first <playground> one.
            while tb is not None and tb.tb_frame.f_code.co_filename != SOURCE_NAME:
                tb = tb.tb_next
            shown = "".join(traceback.format_exception(type(exc), exc, tb))
            result["error"] = shown
            result["sqlstate"] = getattr(exc, "sqlstate", None)
            if self._conn is not None and self._conn.is_closed():
                await self._drop()
        self._used = time.monotonic()
        result["output"] = out.getvalue()
        result["connect_ms"] = (t1 - t0) * 1000 if fresh else None
        result["run_ms"] = (time.perf_counter() - t1) * 1000
        return json.dumps(result, default=_jsonable)

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None
