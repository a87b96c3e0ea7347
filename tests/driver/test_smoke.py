"""Connect and query with each role over each transport."""

from __future__ import annotations

import pytest

import driver
from tests.driver.conftest import ROLES, ConnectArgs


@pytest.mark.parametrize("role", ROLES)
async def test_connect_each_role(connect_args: ConnectArgs, transport: str, role: str) -> None:
    async with await driver.connect(**connect_args(role, transport)) as conn:
        assert await conn.fetchval("select current_user") == role
        row = await conn.fetchrow("select $1::int + 1 as n, 'x' as s", 41)
        assert row is not None and row["n"] == 42 and row[1] == "x"
        assert await conn.execute("select 1; select 2") == "SELECT 1"
