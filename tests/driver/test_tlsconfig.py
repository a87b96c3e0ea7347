"""sslmode -> SSLContext as libpq means it, and the ClientHello our contexts send."""

from __future__ import annotations

import ssl
import struct
from pathlib import Path
from typing import Any

import pytest

from driver.errors import InterfaceError
from driver.tlsconfig import TLSSettings, make_ssl_context, prefer_p256_key_share
from tools.pgcluster import CertBundle, make_certs

X25519, P256, P384 = 0x1D, 0x17, 0x18


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertBundle:
    return make_certs(tmp_path_factory.mktemp("tlsconfig"))


def client_hello(ctx: ssl.SSLContext) -> dict[str, list[int]]:
    """Supported groups and key shares offered in the ClientHello that ``ctx`` produces."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    body = outgoing.read()[9:]  # record header (5) + handshake header (4)
    pos = 2 + 32
    pos += 1 + body[pos]  # session id
    pos += 2 + struct.unpack_from("!H", body, pos)[0]  # cipher suites
    pos += 1 + body[pos]  # compression methods
    end = pos + 2 + struct.unpack_from("!H", body, pos)[0]
    pos += 2
    found: dict[str, list[int]] = {"groups": [], "key_shares": []}
    while pos < end:
        kind, size = struct.unpack_from("!HH", body, pos)
        data = body[pos + 4 : pos + 4 + size]
        pos += 4 + size
        if kind == 10:  # supported_groups
            found["groups"] = [struct.unpack_from("!H", data, i)[0] for i in range(2, size, 2)]
        elif kind == 51:  # key_share
            i = 2
            while i < len(data):
                group, length = struct.unpack_from("!HH", data, i)
                found["key_shares"].append(group)
                i += 4 + length
    return found


@pytest.mark.parametrize(
    ("sslmode", "verify", "check_hostname"),
    [
        ("allow", ssl.CERT_NONE, False),
        ("prefer", ssl.CERT_NONE, False),
        ("require", ssl.CERT_NONE, False),
        ("verify-ca", ssl.CERT_REQUIRED, False),
        ("verify-full", ssl.CERT_REQUIRED, True),
    ],
)
def test_sslmode_sets_verification_like_libpq(
    sslmode: str, verify: ssl.VerifyMode, check_hostname: bool
) -> None:
    ctx = make_ssl_context(TLSSettings(sslmode=sslmode))
    assert ctx is not None
    assert (ctx.verify_mode, ctx.check_hostname) == (verify, check_hostname)
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2


def test_disable_means_no_context() -> None:
    assert make_ssl_context(TLSSettings(sslmode="disable")) is None


@pytest.mark.parametrize("source", ["sslrootcert", "root_certs"])
def test_require_with_a_named_ca_verifies_the_chain(certs: CertBundle, source: str) -> None:
    kw: dict[str, Any] = (
        {"sslrootcert": str(certs.ca_cert)}
        if source == "sslrootcert"
        else {"root_certs": certs.ca_pem}
    )
    ctx = make_ssl_context(TLSSettings(sslmode="require", **kw))
    assert ctx is not None
    assert (ctx.verify_mode, ctx.check_hostname) == (ssl.CERT_REQUIRED, False)
    assert [c["subject"] for c in ctx.get_ca_certs()] == [((("commonName", "pgws test CA"),),)]


def test_named_ca_replaces_the_system_store_and_system_keeps_it(certs: CertBundle) -> None:
    system = make_ssl_context(TLSSettings(sslmode="verify-full"))
    explicit = make_ssl_context(TLSSettings(sslmode="verify-full", sslrootcert="system"))
    named = make_ssl_context(TLSSettings(sslmode="verify-full", sslrootcert=str(certs.ca_cert)))
    assert system is not None and explicit is not None and named is not None
    assert len(named.get_ca_certs()) == 1
    assert len(system.get_ca_certs()) == len(explicit.get_ca_certs())


def test_given_context_is_used_as_is() -> None:
    mine = ssl.create_default_context()
    assert make_ssl_context(TLSSettings(sslmode="verify-full", ssl_context=mine)) is mine


def test_protocol_version_bounds() -> None:
    ctx = make_ssl_context(TLSSettings(sslmode="require", ssl_min_protocol_version="TLSv1.3"))
    assert ctx is not None and ctx.minimum_version == ssl.TLSVersion.TLSv1_3
    ctx = make_ssl_context(TLSSettings(sslmode="require", ssl_max_protocol_version="tlsv1.2"))
    assert ctx is not None and ctx.maximum_version == ssl.TLSVersion.TLSv1_2


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"sslmode": "verify_full"}, "invalid sslmode 'verify_full'"),
        ({"sslcert": "/x.crt"}, "sslcert and sslkey must be given together"),
        ({"ssl_min_protocol_version": "TLSv1.1"}, "unsupported ssl_min_protocol_version"),
        ({"ssl_max_protocol_version": "SSLv3"}, "unsupported ssl_max_protocol_version"),
        (
            {"sslmode": "require", "sslrootcert": "system"},
            'weak sslmode "require" may not be used with sslrootcert=system',
        ),
        ({"sslmode": "verify-ca", "sslrootcert": "system"}, 'use "verify-full"'),
    ],
)
def test_bad_settings_fail_early(kw: dict[str, str], message: str) -> None:
    with pytest.raises(InterfaceError, match=message):
        TLSSettings(**kw)  # type: ignore[arg-type]


def test_unreadable_files_name_the_option(tmp_path: Path, certs: CertBundle) -> None:
    with pytest.raises(InterfaceError, match=r"sslrootcert='/nonexistent/ca\.crt'"):
        make_ssl_context(TLSSettings(sslmode="verify-ca", sslrootcert="/nonexistent/ca.crt"))
    with pytest.raises(InterfaceError, match="root_certs"):
        make_ssl_context(TLSSettings(sslmode="verify-ca", root_certs="not a PEM"))
    with pytest.raises(InterfaceError, match="cannot load client certificate"):
        make_ssl_context(
            TLSSettings(
                sslmode="require", sslcert=str(certs.client_cert), sslkey=str(certs.server_key)
            )
        )  # key of another cert


def test_client_certificate_is_loaded(certs: CertBundle) -> None:
    ctx = make_ssl_context(
        TLSSettings(sslmode="require", sslcert=str(certs.client_cert), sslkey=str(certs.client_key))
    )
    assert ctx is not None  # load_cert_chain checked that key and certificate match


def test_p256_key_share_first_and_other_groups_still_offered() -> None:
    ctx = make_ssl_context(TLSSettings(sslmode="require"))
    assert ctx is not None
    hello = client_hello(ctx)
    assert hello["key_shares"] == [P256]
    assert hello["groups"][0] == P256 and X25519 in hello["groups"] and P384 in hello["groups"]


def test_openssl_default_would_lead_with_x25519() -> None:
    """Why prefer_p256_key_share exists: the default share is one PostgreSQL 15 refuses."""
    ctx = ssl.create_default_context()
    assert client_hello(ctx)["key_shares"] == [X25519]
    assert prefer_p256_key_share(ctx) is True
    assert client_hello(ctx)["key_shares"] == [P256]
