"""Alembic's environment for migrations over WebSockets: an async engine on the
``postgresql+pgws`` dialect, the migrations run inside ``connection.run_sync``.

    DATABASE_URL='postgresql+pgws://...?ws_proxy=proxy.example.org/v2' \\
        alembic -c examples/alembic/alembic.ini upgrade head
"""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

target_metadata = None  # point at your models' MetaData for --autogenerate


def run_offline() -> None:
    context.configure(url=os.environ["DATABASE_URL"], literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def _migrate(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()


async def run_online() -> None:
    engine = create_async_engine(os.environ["DATABASE_URL"])
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_migrate)
            await connection.commit()
    finally:
        await engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    asyncio.run(run_online())
