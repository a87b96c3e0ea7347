"""The SSLRequest answer handled byte for byte against scripted servers (CVE-2021-23222 and
friends), and tls-server-end-point hashes for every kind of certificate signature."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
from collections.abc import AsyncIterator, Callable

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import NameOID
from scramp.core import CBindData

from driver.errors import ProtocolError, TransportError
from driver.tlsconfig import TLSSettings
from driver.tlsconnect import SSL_REQUEST, negotiate, tls_server_end_point
from driver.transport.tcp import open_tcp

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], object]


class Scripted:
    """A loopback server that reads 8 bytes (the SSLRequest), answers ``answer`` (or hangs
    up if it is empty), then keeps reading until the client closes."""

    def __init__(self, answer: bytes) -> None:
        self.answer = answer
        self.received = bytearray()
        self.port = 0
        self._server: asyncio.Server | None = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.received += await reader.readexactly(8)
        if not self.answer:  # hang up instead of answering
            writer.close()
            return
        writer.write(self.answer)
        await writer.drain()
        while data := await reader.read(65536):
            self.received += data
        writer.close()

    async def __aenter__(self) -> Scripted:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()


@pytest.fixture
async def scripted() -> AsyncIterator[Callable[[bytes], Scripted]]:
    yield Scripted


ERROR = b"E\x00\x00\x00\x2eSFATAL\x00C53300\x00Msorry, too many clients already\x00\x00"


@pytest.mark.parametrize(
    ("answer", "error", "message"),
    [
        (b"S\x01\x02\x03", ProtocolError, "unencrypted data after .*CVE-2021-23222"),
        (b"Nextra", ProtocolError, "unencrypted data after"),
        (ERROR, ProtocolError, "FATAL sorry, too many clients already"),
        (b"", ProtocolError, "closed the connection in answer to SSLRequest"),
        (b"HTTP/1.1 200 OK\r\n", ProtocolError, "unexpected answer to SSLRequest"),
    ],
)
async def test_anything_but_one_byte_s_or_n_is_refused(
    answer: bytes, error: type[Exception], message: str
) -> None:
    async with Scripted(answer) as server:
        raw = await open_tcp("127.0.0.1", server.port)
        with pytest.raises(error, match=message):
            await negotiate(raw, TLSSettings(sslmode="prefer"), "localhost")
        assert server.received.startswith(SSL_REQUEST)


@pytest.mark.parametrize("sslmode", ["require", "verify-ca", "verify-full"])
async def test_n_fails_when_tls_is_required(sslmode: str) -> None:
    async with Scripted(b"N") as server:
        raw = await open_tcp("127.0.0.1", server.port)
        with pytest.raises(TransportError, match=f"does not support TLS, but sslmode={sslmode}"):
            await negotiate(raw, TLSSettings(sslmode=sslmode), "db.example")


async def test_n_with_prefer_goes_on_in_clear_on_the_same_connection() -> None:
    async with Scripted(b"N") as server:
        neg = await negotiate(
            await open_tcp("127.0.0.1", server.port), TLSSettings(sslmode="prefer"), "db.example"
        )
        assert (neg.encrypted, neg.channel_binding, neg.tls_version) == (False, None, None)
        await neg.stream.write(b"startup")
        await neg.stream.close()
        assert bytes(server.received) in (SSL_REQUEST + b"startup", SSL_REQUEST)


@pytest.mark.parametrize("sslmode", ["disable", "allow"])
async def test_no_sslrequest_when_the_attempt_is_in_clear(sslmode: str) -> None:
    async with Scripted(b"") as server:
        raw = await open_tcp("127.0.0.1", server.port)
        neg = await negotiate(raw, TLSSettings(sslmode=sslmode), "db.example")
        assert neg.stream is raw and not neg.encrypted
        await raw.write(b"12345678")  # what the server reads is ours, not an SSLRequest
        assert await raw.read(10) == b""  # the server hung up after 8 bytes
        await raw.close()
        assert bytes(server.received) == b"12345678"


class Untouched:
    """A Stream that must not be used at all."""

    async def read(self, max_bytes: int) -> bytes:
        raise AssertionError("read")

    async def write(self, data: bytes) -> None:
        raise AssertionError("write")

    async def close(self) -> None:
        raise AssertionError("close")

    def abort(self) -> None:
        raise AssertionError("abort")


@pytest.mark.parametrize("sslmode", ["prefer", "verify-full"])
async def test_unix_socket_paths_skip_tls_as_libpq_does(sslmode: str) -> None:
    raw = Untouched()
    neg = await negotiate(raw, TLSSettings(sslmode=sslmode), "/var/run/postgresql")
    assert neg.stream is raw and (neg.encrypted, neg.local, neg.confidential) == (False, True, True)


# -- tls-server-end-point ---------------------------------------------------------------


def _cert(key: object, algorithm: hashes.HashAlgorithm | None, **sign_kw: object) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cb test")])
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())  # type: ignore[attr-defined]
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(1))
    )
    cert = builder.sign(key, algorithm, **sign_kw)  # type: ignore[arg-type]
    return cert.public_bytes(serialization.Encoding.DER)


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.mark.parametrize(
    ("algorithm", "expected"),
    [
        (hashes.SHA256(), "sha256"),
        (hashes.SHA384(), "sha384"),
        (hashes.SHA512(), "sha512"),
        (hashes.SHA224(), "sha224"),
    ],
)
def test_rsa_certificates(
    rsa_key: rsa.RSAPrivateKey, algorithm: hashes.HashAlgorithm, expected: str
) -> None:
    der = _cert(rsa_key, algorithm)
    assert tls_server_end_point(der) == hashlib.new(expected, der).digest()
    assert tls_server_end_point(der) == bytes(CBindData.from_der(der))  # scramp agrees


@pytest.mark.parametrize("weak", [b"\x04", b"\x05"])  # md5WithRSA, sha1WithRSA
def test_md5_and_sha1_signatures_hash_with_sha256(rsa_key: rsa.RSAPrivateKey, weak: bytes) -> None:
    """RFC 5929: MD5 and SHA-1 are replaced by SHA-256. cryptography no longer signs with
    them, so the algorithm identifier of a SHA-256 certificate is rewritten (the signature no
    longer verifies, which does not matter for the hash)."""
    sha256_rsa = b"\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x01\x0b"
    der = _cert(rsa_key, hashes.SHA256()).replace(sha256_rsa, sha256_rsa[:-1] + weak)
    assert tls_server_end_point(der) == hashlib.sha256(der).digest()
    assert tls_server_end_point(der) == bytes(CBindData.from_der(der))


@pytest.mark.parametrize(
    ("algorithm", "expected"),
    [
        (hashes.SHA256(), "sha256"),
        (hashes.SHA384(), "sha384"),
        (hashes.SHA512(), "sha512"),
    ],
)
def test_ecdsa_certificates(algorithm: hashes.HashAlgorithm, expected: str) -> None:
    der = _cert(ec.generate_private_key(ec.SECP256R1()), algorithm)
    assert tls_server_end_point(der) == hashlib.new(expected, der).digest()


def test_rsa_pss_uses_the_hash_in_its_parameters(rsa_key: rsa.RSAPrivateKey) -> None:
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=48)
    der = _cert(rsa_key, hashes.SHA384(), rsa_padding=pss)
    assert tls_server_end_point(der) == hashlib.sha384(der).digest()


def test_no_binding_without_a_hash_or_for_garbage() -> None:
    assert tls_server_end_point(_cert(ed25519.Ed25519PrivateKey.generate(), None)) is None
    assert tls_server_end_point(b"\x30\x03\x02\x01\x00") is None
    assert tls_server_end_point(b"") is None
