"""A prepared statement whose result types changed under it: asyncpg's
InvalidCachedStatementError, side by side with asyncpg; cached queries are re-prepared
outside a transaction block."""

from __future__ import annotations

import asyncpg
import pytest

import driver
from tests.driver.conftest import Connect


async def test_changed_result_type(connect: Connect) -> None:
    conn = await connect()
    try:
        await conn.execute("create temp table t_plan (a int, b int)")
        await conn.execute("insert into t_plan values (1, 2)")
        stmt = await conn.prepare("select * from t_plan")
        assert tuple(await conn.fetchrow("select * from t_plan")) == (1, 2)  # now cached
        await conn.execute("alter table t_plan alter column b set data type text")
        invalid = (
            asyncpg.InvalidCachedStatementError
            if isinstance(conn, asyncpg.Connection)
            else driver.exceptions.InvalidCachedStatementError
        )
        with pytest.raises(invalid, match="cached statement plan is invalid"):
            await stmt.fetchrow()
        # the cached query is prepared again outside a transaction block
        assert tuple(await conn.fetchrow("select * from t_plan")) == (1, "2")
    finally:
        await conn.close()
