"""Running an app instance in the test's event loop: lifespan plus an httpx client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from app.main import create_app
from app.settings import Settings


@asynccontextmanager
async def serve(
    settings: Settings, *, client_ip: str = "127.0.0.1", app: FastAPI | None = None
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The app with its lifespan running and a client whose TCP peer is `client_ip`."""
    app = app or create_app(settings)
    transport = httpx.ASGITransport(app=app, client=(client_ip, 50000))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=transport, base_url="http://app.test") as client:
            yield app, client


def metric(app: FastAPI, name: str, **labels: str) -> float:
    """A sample's value from the app's own registry (0 when it has not been observed)."""
    value = app.state.metrics.registry.get_sample_value(name, labels)
    return float(value or 0.0)
