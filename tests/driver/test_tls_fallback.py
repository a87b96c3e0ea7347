"""libpq's retries between TLS and clear for sslmode=allow/prefer, against a private cluster
whose pg_hba.conf has hostssl-only and hostnossl-only roles (the session cluster lets every
role in both ways)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import driver
from driver.errors import AuthenticationError
from tools.pgcluster import Cluster, destroy, start_temp_cluster

HBA = """local all all trust
hostssl all tls_user 127.0.0.1/32 scram-sha-256
hostnossl all scram_user 127.0.0.1/32 scram-sha-256
host all clear_user 127.0.0.1/32 password
"""
SSL = "select ssl from pg_stat_ssl where pid = pg_backend_pid()"


@pytest.fixture(scope="module")
def strict_pg() -> Iterator[Cluster]:
    cluster = start_temp_cluster()
    try:
        (cluster.datadir / "pg_hba.conf").write_text(HBA)
        cluster.psql("select pg_reload_conf()")
        yield cluster
    finally:
        destroy(cluster)


async def ssl_in_use(cluster: Cluster, role: str, sslmode: str) -> bool:
    conn = await driver.connect(cluster.dsn(role), sslmode=sslmode, timeout=20)
    try:
        return bool(await conn.fetchval(SSL))
    finally:
        await conn.close()


async def test_allow_retries_with_tls_for_a_hostssl_role(strict_pg: Cluster) -> None:
    assert await ssl_in_use(strict_pg, "tls_user", "allow") is True


async def test_prefer_retries_in_clear_for_a_hostnossl_role(strict_pg: Cluster) -> None:
    assert await ssl_in_use(strict_pg, "scram_user", "prefer") is False


async def test_allow_sends_a_cleartext_password_in_clear_over_direct_tcp(
        strict_pg: Cluster) -> None:
    # As libpq and asyncpg do (issue 12): on a direct TCP connection the first attempt
    # (clear) answers the cleartext password request; through a WebSocket proxy it would be
    # refused and the TLS attempt would send it (test_pipeline.py checks that path).
    assert await ssl_in_use(strict_pg, "clear_user", "allow") is False


async def test_require_does_not_fall_back(strict_pg: Cluster) -> None:
    with pytest.raises(AuthenticationError) as err:
        await ssl_in_use(strict_pg, "scram_user", "require")
    assert err.value.sqlstate == "28000"
    with pytest.raises(AuthenticationError):
        await ssl_in_use(strict_pg, "tls_user", "disable")
