"""The playground's Python side, run by Pyodide in the visitor's browser.

It holds one connection for the page's lifetime, opened on first use, so the first query pays
for the WebSocket, the proxy's TCP connect and SCRAM, and later ones cost one round trip.
Results go back to JavaScript as JSON text, which avoids proxying Python objects into JS.
"""

from __future__ import annotations

import datetime
import decimal
import json
import time
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


def _jsonable(value: Any) -> Any:
    if isinstance(value, decimal.Decimal | datetime.date | datetime.time | datetime.timedelta):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    return str(value)


class Playground:
    """The page's session: one connection, queries in a read-only transaction."""

    def __init__(self, config_json: str) -> None:
        config = json.loads(config_json)
        self.dsn: str = config["database_url"]
        self.ws_proxy: str = config["ws_proxy"]
        self.use_secure_websocket: bool = bool(config["use_secure_websocket"])
        self.row_limit: int = int(config["row_limit"])
        self._conn: Any = None

    async def _connection(self) -> Any:
        if self._conn is None or self._conn.is_closed():
            self._conn = await driver.connect(
                self.dsn,
                ws_proxy=self.ws_proxy,
                use_secure_websocket=self.use_secure_websocket,
            )
        return self._conn

    async def run(self, sql: str, args_json: str = "[]") -> str:
        """Run one statement and return {columns, rows, truncated, timings} as JSON text.

        Errors come back as {"error": ..., "sqlstate": ...} so the page can show them; the
        connection is dropped after a transport failure and reopened on the next call.
        """
        args = json.loads(args_json)
        t0 = time.perf_counter()
        connected = self._conn is not None and not self._conn.is_closed()
        try:
            conn = await self._connection()
            t1 = time.perf_counter()
            # Read-only even if the role's default were changed: belt and braces.
            async with conn.transaction(readonly=True):
                records = await conn.fetch(sql, *args)
            t2 = time.perf_counter()
        except driver.PostgresError as exc:
            return json.dumps({"error": exc.message, "sqlstate": exc.sqlstate})
        except driver.Error as exc:
            self._conn = None
            return json.dumps({"error": str(exc), "sqlstate": None})
        columns = list(records[0].keys()) if records else []
        rows = [list(r.values()) for r in records[: self.row_limit]]
        result = {
            "columns": columns,
            "rows": rows,
            "row_count": len(records),
            "truncated": len(records) > self.row_limit,
            "connect_ms": None if connected else (t1 - t0) * 1000,
            "query_ms": (t2 - t1) * 1000,
        }
        return json.dumps(result, default=_jsonable)

    async def nearest(self, longitude: float, latitude: float, limit: int = 10) -> str:
        """The app's nearest-sites query, run from the browser."""
        return await self.run(NEAREST_SQL, json.dumps([longitude, latitude, limit]))

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None
