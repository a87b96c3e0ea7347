"""command_timeout: a connection-wide default deadline that cancels, and keeps the connection."""

from __future__ import annotations

import time

import pytest

import driver
from tests.driver.conftest import ConnectArgs


@pytest.mark.parametrize("transport", ["tcp", "ws"])
async def test_command_timeout_cancels_and_the_connection_stays_usable(
    connect_args: ConnectArgs, transport: str
) -> None:
    conn = await driver.connect(**connect_args("trust_user", transport, command_timeout=0.2))
    try:
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            await conn.fetchval("select pg_sleep(30)")
        assert time.monotonic() - start < 1.0
        assert await conn.fetchval("select 41 + 1") == 42
        # an explicit timeout= wins over the connection-wide one
        assert await conn.fetchval("select 7 from pg_sleep(0.4)", timeout=5) == 7
    finally:
        await conn.close()


async def test_command_timeout_must_be_positive(connect_args: ConnectArgs) -> None:
    with pytest.raises(driver.InterfaceError, match="command_timeout"):
        await driver.connect(**connect_args("trust_user", command_timeout=-1))
