"""The acceptance test of issue 6: the driver in Pyodide in headless Chromium, through the real
proxy to the real cluster with SCRAM, returns the same rows as the CPython driver.

Connect + first query is timed on both sides and printed (measured, never asserted).
"""

from __future__ import annotations

import json
import statistics
import time
from typing import TYPE_CHECKING, Any

import driver

if TYPE_CHECKING:
    from conftest import LoadedPage, PlaygroundDB, Server

NEAREST = """
SELECT id_no, name_en, ST_AsText(location) AS wkt,
       (location <-> ST_MakePoint($1, $2)::geography)::float8 AS distance_m
FROM whc_sites
ORDER BY location <-> ST_MakePoint($1, $2)::geography
LIMIT 10
"""
PROBES = [(2.3522, 48.8566), (-122.4194, 37.7749), (151.2093, -33.8688)]
ROUNDS = 5

BROWSER_CODE = """
import json, time
import driver

async def one_round(first_only):
    t0 = time.perf_counter()
    conn = await driver.connect(DSN, ws_proxy=WS_PROXY, use_secure_websocket=False)
    try:
        results = [await conn.fetch(NEAREST, *PROBES[0])]
        elapsed = (time.perf_counter() - t0) * 1000
        if not first_only:
            for lon, lat in PROBES[1:]:
                results.append(await conn.fetch(NEAREST, lon, lat))
    finally:
        await conn.close()
    return [[list(r.values()) for r in rows] for rows in results], elapsed

import warnings
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    rows, first_ms = await one_round(False)
hop_warnings = [str(w.message) for w in caught if type(w.message).__name__ == "ProxyHopWarning"]
times = [first_ms]
for _ in range(ROUNDS - 1):
    times.append((await one_round(True))[1])
import hashlib
# The SCRAM logins above ran where hashlib has no pbkdf2_hmac: driver.auth.pbkdf2 derived the keys.
fallback = not hasattr(hashlib, "pbkdf2_hmac")
json.dumps({"rows": rows, "times": times, "pbkdf2_fallback": fallback, "hop": hop_warnings})
"""


async def cpython_round(dsn: str, ws_proxy: str, first_only: bool) -> tuple[list[Any], float]:
    t0 = time.perf_counter()
    conn = await driver.connect(dsn, ws_proxy=ws_proxy, use_secure_websocket=False)
    try:
        results = [await conn.fetch(NEAREST, *PROBES[0])]
        elapsed = (time.perf_counter() - t0) * 1000
        if not first_only:
            for lon, lat in PROBES[1:]:
                results.append(await conn.fetch(NEAREST, lon, lat))
    finally:
        await conn.close()
    return [[list(r.values()) for r in rows] for rows in results], elapsed


async def test_nearest_in_chromium_equals_cpython(
    loaded_page: LoadedPage, playground_db: PlaygroundDB, playground_server: Server
) -> None:
    dsn = playground_db.dsn("scram_user")  # scram-sha-256 in pg_hba: SCRAM or no connection
    code = (
        f"DSN = {dsn!r}\nWS_PROXY = {playground_server.ws_proxy!r}\n"
        f"NEAREST = {NEAREST!r}\nPROBES = {PROBES!r}\nROUNDS = {ROUNDS}\n" + BROWSER_CODE
    )
    browser = await loaded_page.python(code)

    expected, first_ms = await cpython_round(dsn, playground_server.ws_proxy, False)
    cpython_times = [first_ms]
    for _ in range(ROUNDS - 1):
        cpython_times.append((await cpython_round(dsn, playground_server.ws_proxy, True))[1])

    assert browser["pbkdf2_fallback"] is True
    # No TLS in Pyodide and ws:// to the proxy: the driver must say nothing is encrypted.
    assert len(browser["hop"]) == 1 and "not encrypted at all" in browser["hop"][0]
    assert not [m for m in loaded_page.console if "destroyed" in m], loaded_page.console
    # JSON keeps ints, strings and float8 values exactly (shortest round-trip repr).
    assert browser["rows"] == json.loads(json.dumps(expected))
    assert [len(r) for r in browser["rows"]] == [10, 10, 10]
    assert browser["rows"][0][0][2].startswith("POINT(")
    # Nearest first: the distances really are ordered, so the query did what it says.
    for rows in browser["rows"]:
        distances = [r[3] for r in rows]
        assert distances == sorted(distances)

    b, c = statistics.median(browser["times"]), statistics.median(cpython_times)
    print(
        f"\nconnect (SCRAM) + first nearest query through the proxy, median of {ROUNDS}: "
        f"Chromium/Pyodide {b:.1f} ms (first {browser['times'][0]:.1f} ms), "
        f"CPython {c:.1f} ms (first {cpython_times[0]:.1f} ms), ratio {b / c:.1f}x"
    )
