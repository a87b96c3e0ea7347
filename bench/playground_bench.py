"""How fast /playground starts Python, on demand (not a test).

`.venv/bin/python -m bench.playground_bench [--runs N]`

Serves the playground alone (app.playground:create_playground_app in a uvicorn process; no
database is needed, since "Python ready" means Pyodide started and the driver imported, before
any connection) and loads it in headless Chromium, several times:

  * first load: a new browser context (empty HTTP cache), then
  * second load: the same context navigating to the page again (cache warm).

Per load it reports the time from navigation start to the status turning "ready" (the page's
own clock), and the main thread's long tasks (PerformanceObserver "longtask", over 50 ms each)
seen until then: their count, total and longest. Prints the medians as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
from typing import Any

from playwright.async_api import Browser, async_playwright

from app.assets import Assets
from tools.pgcluster import free_port
from tools.procs import start_and_wait, stop

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"]
# Runs before the page's own scripts: records long tasks from the start, and when #status
# first says "ready" (the same signal the browser tests wait for).
PROBE = """
window.__bench = { longtasks: [], readyAt: null };
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) window.__bench.longtasks.push([e.startTime, e.duration]);
}).observe({ type: "longtask", buffered: true });
document.addEventListener("DOMContentLoaded", () => {
  const s = document.getElementById("status");
  const check = () => {
    if (s.dataset.state === "ready" && window.__bench.readyAt === null)
      window.__bench.readyAt = performance.now();
  };
  new MutationObserver(check).observe(s, { attributes: true, childList: true });
  check();
});
"""


async def one_load(page: Any, url: str) -> dict[str, float]:
    await page.goto(url, wait_until="commit")
    await page.wait_for_function(
        "window.__bench && window.__bench.readyAt !== null", timeout=120_000
    )
    got = await page.evaluate("window.__bench")
    ready = float(got["readyAt"])
    tasks = [d for start, d in got["longtasks"] if start <= ready]
    return {
        "ready_s": round(ready / 1000, 3),
        "longtasks": len(tasks),
        "longtask_total_ms": round(sum(tasks)),
        "longtask_max_ms": round(max(tasks, default=0.0)),
    }


async def measure(browser: Browser, url: str, runs: int) -> dict[str, list[dict[str, float]]]:
    out: dict[str, list[dict[str, float]]] = {"first": [], "second": []}
    for _ in range(runs):
        context = await browser.new_context()
        await context.add_init_script(PROBE)
        page = await context.new_page()
        try:
            out["first"].append(await one_load(page, url))
            out["second"].append(await one_load(page, url))
        finally:
            await context.close()
    return out


def medians(loads: list[dict[str, float]]) -> dict[str, float]:
    return {k: statistics.median(load[k] for load in loads) for k in loads[0]}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    Assets().build(log=lambda _: None)
    port = free_port()
    env = {
        "PLAYGROUND_DATABASE_URL": "postgresql://playground:playground@127.0.0.1:1/none",
        "PLAYGROUND_WS_PROXY": "127.0.0.1:1",
        "PLAYGROUND_WS_SECURE": "0",
    }
    argv = [sys.executable, "-m", "uvicorn", "--factory", "app.playground:create_playground_app"]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--no-access-log"]
    proc, _ = start_and_wait(argv, "Uvicorn running on", env=env, timeout=30)
    try:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            try:
                loads = await measure(browser, f"http://127.0.0.1:{port}/playground/", args.runs)
            finally:
                await browser.close()
    finally:
        stop(proc)
    report = {visit: {"median": medians(v), "runs": v} for visit, v in loads.items()}
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    asyncio.run(main())
