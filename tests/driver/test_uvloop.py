"""The driver on uvloop, the loop uvicorn[standard] runs the app on: TCP and WebSocket."""

from __future__ import annotations

from typing import Any

import pytest
import uvloop

import driver
from tests.driver.conftest import ConnectArgs


@pytest.mark.parametrize("transport", ["tcp", "ws"])
def test_connect_and_query_on_uvloop(connect_args: ConnectArgs, transport: str) -> None:
    """uvloop's transports are not asyncio.Transport subclasses; the streams must not care."""
    args = connect_args("scram_user", transport)

    async def main() -> list[Any]:
        async with await driver.connect(**args) as conn:
            rows = await conn.fetch("select g, g::text from generate_series(1, 3) g")
            big = await conn.fetchval("select repeat('x', 300000)")  # several reads
            assert big == "x" * 300000
            return [tuple(r) for r in rows]

    assert uvloop.run(main()) == [(1, "1"), (2, "2"), (3, "3")]
