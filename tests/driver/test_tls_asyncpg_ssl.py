"""asyncpg's ``ssl=`` argument means exactly what it means in asyncpg, checked side by side.

The security-relevant cases first: ``ssl=True`` and ``ssl="verify-full"`` refuse a server
certificate from an untrusted CA and one for another host name; ``ssl="disable"`` and
``ssl=False`` send no SSLRequest at all (a relay in front of Postgres records the first
bytes). asyncpg runs the same connects against the same cluster wherever it can.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any
from urllib.parse import quote

import asyncpg
import pytest

import driver
from driver.errors import InterfaceError, TransportError
from driver.params import sslmode_from_ssl_argument
from tests.driver.conftest import ConnectArgs
from tools.pgcluster import Cluster, make_certs
from tools.relay import CountingRelay

SSL_REQUEST = b"\x00\x00\x00\x08\x04\xd2\x16\x2f"
PROTOCOL_3 = b"\x00\x03\x00\x00"
IS_SSL = "select ssl from pg_stat_ssl where pid = pg_backend_pid()"


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_certs(tmp_path_factory.mktemp("apg-ssl-other-ca")).ca_cert


def _dsn(pg: Cluster, ca: Path | None = None, host: str | None = None, port: int | None = None,
         role: str = "scram_user") -> str:
    dsn = pg.dsn(role, host=host)
    if port is not None:
        dsn = dsn.replace(f":{pg.port}/", f":{port}/")
    return dsn + (f"?sslrootcert={quote(str(ca))}" if ca is not None else "")


def _ours(connect_args: ConnectArgs, transport: str, dsn: str, **kw: Any) -> dict[str, Any]:
    # connect_args' sslmode="disable" must not mask ssl=: sslmode=None drops it
    args = {"allow_unencrypted_password": False, **kw}
    return connect_args("scram_user", transport, dsn=dsn, sslmode=None, **args)


@pytest.mark.parametrize(
    ("value", "mode"),
    [(True, "verify-full"), (False, "disable"), ("disable", "disable"), ("allow", "allow"),
     ("prefer", "prefer"), ("require", "require"), ("verify-ca", "verify-ca"),
     ("verify-full", "verify-full"), ("verify_full", "verify-full"), ("VERIFY-CA", "verify-ca")],
)
def test_ssl_argument_maps_to_sslmode(value: object, mode: str) -> None:
    assert sslmode_from_ssl_argument(value) == (mode, None)


def test_an_ssl_context_is_used_as_given_and_tls_is_required() -> None:
    ctx = ssl.create_default_context()
    assert sslmode_from_ssl_argument(ctx) == ("require", ctx)


@pytest.mark.parametrize("value", ["yes", "", "verify", 1, 0, None, b"require", object()])
def test_a_bad_ssl_argument_is_a_typed_error(value: object) -> None:
    with pytest.raises(InterfaceError, match="ssl"):
        sslmode_from_ssl_argument(value)


def test_ssl_wins_over_the_dsn_and_a_contradicting_sslmode_is_refused() -> None:
    from driver.params import resolve

    assert resolve("postgres://u@h/d?sslmode=require", ssl="disable").sslmode == "disable"
    assert resolve("postgres://u@h/d?sslmode=disable", ssl=True).sslmode == "verify-full"
    assert resolve("postgres://u@h/d", ssl=True, sslmode="verify-full").sslmode == "verify-full"
    with pytest.raises(InterfaceError, match="contradict"):
        resolve("postgres://u@h/d", ssl=True, sslmode="require")
    ctx = ssl.create_default_context()
    p = resolve("postgres://u@h/d", ssl=ctx, sslmode="verify-full")
    assert (p.sslmode, p.ssl_context) == ("verify-full", ctx)


@pytest.mark.parametrize("value", [True, "verify-full"])
async def test_an_untrusted_ca_is_refused(
    pg: Cluster, connect_args: ConnectArgs, transport: str, other_ca: Path, value: object
) -> None:
    # sslrootcert names a CA that did not sign the server's certificate (asyncpg's ssl=True
    # ignores sslrootcert and uses the system store, which does not know the test CA either)
    dsn = _dsn(pg, other_ca)
    with pytest.raises(TransportError, match="could not be verified"):
        await driver.connect(**_ours(connect_args, transport, dsn, ssl=value))
    with pytest.raises(TransportError, match="could not be verified"):  # system trust store
        await driver.connect(**_ours(connect_args, transport, _dsn(pg), ssl=value))
    if transport == "tcp":
        with pytest.raises(ssl.SSLCertVerificationError):
            await asyncpg.connect(dsn, ssl=value)


@pytest.mark.parametrize("value", [True, "verify-full"])
async def test_a_wrong_host_name_is_refused(
    pg: Cluster, connect_args: ConnectArgs, transport: str, open_proxy: str, value: object
) -> None:
    # "127.1" reaches 127.0.0.1, but is a host NAME to the check; the certificate names only
    # localhost, 127.0.0.1 and ::1. The CA is the right one, so only the name can fail.
    assert pg.certs is not None
    dsn = _dsn(pg, pg.certs.ca_cert, host="127.1")
    extra = {"ws_proxy": open_proxy} if transport == "ws" else {}
    with pytest.raises(TransportError, match=r"does not match host name '127\.1'"):
        await driver.connect(**_ours(connect_args, transport, dsn, ssl=value, **extra))
    # the same connect checking only the chain succeeds: the refusal was the host name's
    conn = await driver.connect(**_ours(connect_args, transport, dsn, ssl="verify-ca", **extra))
    try:
        assert await conn.fetchval(IS_SSL) is True
    finally:
        await conn.close()
    if transport == "tcp" and value == "verify-full":
        with pytest.raises(ssl.SSLCertVerificationError, match=r"127\.1"):
            await asyncpg.connect(dsn, ssl=value)
        aconn = await asyncpg.connect(dsn, ssl="verify-ca")
        try:
            assert await aconn.fetchval(IS_SSL) is True
        finally:
            await aconn.close()


@pytest.mark.parametrize(("value", "tls"), [
    ("disable", False), ("allow", False), ("prefer", True), ("require", True),
    ("verify-ca", True), ("verify-full", True), (False, False),
])
async def test_each_ssl_value_encrypts_as_asyncpg_does(
    pg: Cluster, connect_args: ConnectArgs, transport: str, value: object, tls: bool
) -> None:
    assert pg.certs is not None
    dsn = _dsn(pg, pg.certs.ca_cert, host="localhost")
    conn = await driver.connect(**_ours(connect_args, transport, dsn, ssl=value,
                                        allow_unencrypted_password=True))
    try:
        assert await conn.fetchval(IS_SSL) is tls
    finally:
        await conn.close()
    if transport == "tcp":
        aconn = await asyncpg.connect(dsn, ssl=value)
        try:
            assert await aconn.fetchval(IS_SSL) is tls
        finally:
            await aconn.close()


@pytest.mark.parametrize(("value", "sends_ssl_request"), [
    ("disable", False), (False, False), ("prefer", True), (True, True),
])
async def test_disable_sends_no_ssl_request(
    pg: Cluster, connect_args: ConnectArgs, transport: str, open_proxy: str, value: object,
    sends_ssl_request: bool,
) -> None:
    """The relay sits between the client (or the proxy) and Postgres and keeps the first
    bytes: a StartupMessage (protocol 3.0) when TLS is off, the SSLRequest code otherwise."""
    assert pg.certs is not None
    extra = {"ws_proxy": open_proxy} if transport == "ws" else {}
    async with CountingRelay("127.0.0.1", pg.port) as relay:
        dsn = _dsn(pg, pg.certs.ca_cert, host="localhost", port=relay.port)
        kw = _ours(connect_args, transport, dsn, ssl=value, allow_unencrypted_password=True,
                   **extra)
        conn = await driver.connect(**kw)
        await conn.close()
        first = bytes(relay.last().up[:8])
        assert (first == SSL_REQUEST) is sends_ssl_request
        if not sends_ssl_request:
            assert first[4:8] == PROTOCOL_3
        if transport == "tcp" and value is not True:  # asyncpg's True: system trust store
            aconn = await asyncpg.connect(dsn, ssl=value)
            await aconn.close()
            assert (bytes(relay.last().up[:8]) == SSL_REQUEST) is sends_ssl_request
