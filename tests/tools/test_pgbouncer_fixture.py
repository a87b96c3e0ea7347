"""The pgbouncer fixture really pools by transaction and lets every test role in."""

from __future__ import annotations

import psycopg
import pytest

from tools.pgbouncer import Bouncer


@pytest.mark.parametrize("role", ["trust_user", "scram_user", "clear_user", "md5_user"])
def test_each_role_gets_through(pgbouncer: Bouncer, role: str) -> None:
    with psycopg.connect(
        pgbouncer.dsn(role, sslmode="disable"), prepare_threshold=None, connect_timeout=10
    ) as conn:
        assert conn.execute("select current_user").fetchone() == (role,)


def test_transaction_pooling_shares_one_backend_between_clients(pgbouncer: Bouncer) -> None:
    """Two open client connections, used one after the other, run on the same server
    backend: the server connection went back to the pool at the end of each transaction
    (session pooling would pin one backend per client)."""
    dsn = pgbouncer.dsn("scram_user", sslmode="disable")
    with (
        psycopg.connect(dsn, prepare_threshold=None, autocommit=True) as a,
        psycopg.connect(dsn, prepare_threshold=None, autocommit=True) as b,
    ):
        pid_a = a.execute("select pg_backend_pid()").fetchone()
        pid_b = b.execute("select pg_backend_pid()").fetchone()
        assert pid_a == pid_b


def test_client_tls_is_offered(pgbouncer: Bouncer) -> None:
    with psycopg.connect(pgbouncer.dsn("scram_user", sslmode="require")) as conn:
        assert conn.pgconn.ssl_in_use
