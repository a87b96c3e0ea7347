"""app/shedding.py as an ASGI middleware around a handler the test holds: who runs, who waits,
who is shed at once and who is shed after the queue timeout (events, no sleeps)."""

from __future__ import annotations

import asyncio
from typing import Any

from app.shedding import LoadShedding


class Held:
    """An ASGI app whose requests finish only when the test says so."""

    def __init__(self) -> None:
        self.started: asyncio.Queue[str] = asyncio.Queue()
        self.release = asyncio.Event()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.started.put(scope["path"])
        await self.release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


async def call(app: Any, path: str) -> tuple[int, dict[bytes, bytes]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app({"type": "http", "path": path, "method": "GET"}, receive, send)
    return sent[0]["status"], dict(sent[0].get("headers", []))


async def test_sheds_past_the_queue_at_once_and_after_the_queue_timeout() -> None:
    held = Held()
    app = LoadShedding(held, max_active=1, max_queued=1, queue_timeout_s=30, retry_after_s=7)
    first = asyncio.create_task(call(app, "/a"))
    assert await asyncio.wait_for(held.started.get(), 5) == "/a"
    queued = asyncio.create_task(call(app, "/b"))
    await asyncio.sleep(0)  # one turn: the task runs until it blocks on the slot
    assert app._waiting == 1
    # the queue is full: the third is refused without waiting
    status, headers = await asyncio.wait_for(call(app, "/c"), 1)
    assert status == 503 and headers[b"retry-after"] == b"7"
    # health checks are never shed
    probe = asyncio.create_task(call(app, "/healthz"))
    assert await asyncio.wait_for(held.started.get(), 5) == "/healthz"
    held.release.set()
    assert (await first)[0] == 200 and (await queued)[0] == 200 and (await probe)[0] == 200
    assert app.shed == 1


async def test_a_queued_request_is_shed_at_the_queue_timeout() -> None:
    held = Held()
    app = LoadShedding(held, max_active=1, max_queued=5, queue_timeout_s=0.2, retry_after_s=1)
    first = asyncio.create_task(call(app, "/a"))
    await asyncio.wait_for(held.started.get(), 5)
    loop = asyncio.get_running_loop()
    start = loop.time()
    status, headers = await asyncio.wait_for(call(app, "/b"), 5)
    assert status == 503 and headers[b"retry-after"] == b"1"
    assert 0.15 < loop.time() - start < 2
    held.release.set()
    assert (await first)[0] == 200


async def test_zero_means_no_bound() -> None:
    held = Held()
    held.release.set()
    app = LoadShedding(held, max_active=0, max_queued=0, queue_timeout_s=1, retry_after_s=1)
    results = await asyncio.gather(*(call(app, f"/{i}") for i in range(50)))
    assert {s for s, _ in results} == {200}
