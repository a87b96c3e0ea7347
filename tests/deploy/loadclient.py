"""`python -m tests.deploy.loadclient URL TOTAL CONCURRENCY RATE`: steady load on /api/nearest
at random points (new cells, so the database is reached), paced to RATE requests a second.

Prints `progress N` every 50 answers (the test waits on these lines), then one JSON line:
counts by outcome, with a 503 counted as shed only when it carries Retry-After.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time

import httpx


async def main(url: str, total: int, concurrency: int, rate: float) -> dict[str, int]:
    counts = {"ok": 0, "shed": 0, "bare_503": 0, "other": 0, "error": 0}
    rng = random.Random(7)
    start = time.monotonic()
    issued = 0
    done = 0
    lock = asyncio.Lock()

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal issued, done
        while True:
            async with lock:
                if issued >= total:
                    return
                n = issued
                issued += 1
            # pacing: request n is due at start + n / rate
            delay = start + n / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            lat, lon = round(rng.uniform(-60, 70), 3), round(rng.uniform(-180, 180), 3)
            params = {"lat": lat, "lon": lon}
            try:
                r = await client.get(url, params=params)
                if r.status_code == 200 and r.json()["nearestSites"]:
                    counts["ok"] += 1
                elif r.status_code == 503 and "retry-after" in r.headers:
                    counts["shed"] += 1
                    print(f"shed {time.monotonic() - start:.2f} {r.text[:200]}", flush=True)
                elif r.status_code == 503:
                    counts["bare_503"] += 1
                else:
                    counts["other"] += 1
                    print(f"unexpected {r.status_code} {r.text[:200]}", flush=True)
            except httpx.HTTPError as exc:
                counts["error"] += 1
                print(f"error {exc!r}", flush=True)
            done += 1
            if done % 50 == 0:
                print(f"progress {done}", flush=True)

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=15, limits=limits) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    return counts


if __name__ == "__main__":
    url, total, conc, rate = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    result = asyncio.run(main(url, total, conc, rate))
    print(json.dumps(result), flush=True)
