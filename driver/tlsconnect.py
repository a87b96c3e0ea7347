"""The SSLRequest exchange that starts a Postgres connection, and the TLS session after it.

``negotiate()`` is the seam ``connect()`` calls with the freshly opened stream (TCP or
WebSocket): it returns the stream to run the Postgres protocol on, whether that stream is
encrypted end to end to the server, and the ``tls-server-end-point`` channel binding data
for SCRAM-SHA-256-PLUS. See "SSL Session Encryption" in the PostgreSQL docs ("Message Flow").
"""

from __future__ import annotations

import functools
import hashlib
import ssl
from dataclasses import dataclass
from typing import TYPE_CHECKING

from driver.errors import ProtocolError, TransportError
from driver.protocol.frontend import SSL_REQUEST
from driver.tlsconfig import TLSSettings, make_ssl_context
from driver.transport.tls import TLSStream

if TYPE_CHECKING:
    from driver.transport.base import Stream

__all__ = [
    "SSL_REQUEST",
    "Negotiated",
    "negotiate",
    "tls_attempts",
    "tls_server_end_point",
]


@dataclass(frozen=True, slots=True)
class Negotiated:
    """What the SSLRequest exchange produced.

    ``encrypted`` is True only when a TLS session with the Postgres server itself is up (a
    ``wss://`` hop to a proxy does not count): the authentication policy needs it to decide
    whether a password may be sent. ``channel_binding`` is the ``tls-server-end-point`` data
    (RFC 5929) when TLS is up and the certificate's signature names a usable hash.
    ``verified``: the server's certificate chain was checked, so the server is authenticated
    before any Postgres byte is sent (the auth policy's ``server_verified``).
    """

    stream: Stream
    encrypted: bool
    channel_binding: bytes | None = None
    tls_version: str | None = None
    local: bool = False
    verified: bool = False  # the certificate chain was checked (verify-ca, verify-full...)

    @property
    def confidential(self) -> bool:
        """Nobody but the server can read what is sent: TLS to Postgres, or a Unix socket
        (the kernel is the whole path). Pass this as the auth policy's ``encrypted``."""
        return self.encrypted or self.local


def tls_attempts(sslmode: str) -> tuple[bool, ...]:
    """The TLS choice of each connection attempt libpq makes for ``sslmode``, in order.

    ``allow`` tries without TLS first and again with it if that attempt fails; ``prefer``
    tries TLS first and once more without it if the TLS attempt fails (a server answering
    'N' is not a failure: ``negotiate`` just goes on in clear on the same connection).
    """
    return {"disable": (False,), "allow": (False, True), "prefer": (True, False)}.get(
        sslmode, (True,)
    )


async def negotiate(
    raw: Stream,
    settings: TLSSettings,
    host: str,
    *,
    use_tls: bool | None = None,
) -> Negotiated:
    """Send SSLRequest if this attempt wants TLS, and set TLS up if the server agrees.

    Args:
        raw: the stream just opened to the server (or to the proxy relaying to it).
        settings: the connection's TLS options.
        host: the DATABASE host name or address (no brackets), for SNI and verify-full;
            a path (Unix-socket directory) means no TLS, as in libpq.
        use_tls: this attempt's choice, from ``tls_attempts()``; by default the first one.

    Returns:
        The stream on which to send the startup message, and the facts about it.

    Raises:
        TransportError: TLS is required and the server refused it, or the handshake or
            certificate check failed (the stream is closed).
        ProtocolError: the server answered SSLRequest with anything but exactly one byte
            'S' or 'N' (an error message, or extra bytes: CVE-2021-23222).
    """
    if host.startswith("/"):
        # A Unix-socket directory: Postgres has no TLS there and libpq ignores sslmode.
        return Negotiated(raw, encrypted=False, local=True)
    if use_tls is None:
        use_tls = tls_attempts(settings.sslmode)[0]
    if not use_tls:
        return Negotiated(raw, encrypted=False)
    await raw.write(SSL_REQUEST)
    answer = await raw.read(65536)
    if answer == b"N":
        if settings.tls_required:
            await raw.close()
            raise TransportError(
                f"the server at {host!r} does not support TLS, but sslmode={settings.sslmode}"
            )
        return Negotiated(raw, encrypted=False)
    if answer != b"S":
        await raw.close()
        raise ProtocolError(_bad_answer(answer))
    ctx = _context(settings)
    assert ctx is not None  # sslmode=disable never sends SSLRequest
    name = host.strip("[]") or None
    stream = await TLSStream.wrap(raw, ctx, server_hostname=name)
    der = stream.peer_certificate_der()
    return Negotiated(
        stream,
        encrypted=True,
        channel_binding=tls_server_end_point(der) if der else None,
        tls_version=stream.ssl_object.version(),
        verified=ctx.verify_mode == ssl.CERT_REQUIRED,
    )


@functools.lru_cache(maxsize=32)
def _context(settings: TLSSettings) -> ssl.SSLContext | None:
    """One context per distinct settings: loading the system trust store costs milliseconds
    of CPU, which a serverless connect can't pay every time. Files are read once per process.
    """
    return make_ssl_context(settings)


def _bad_answer(answer: bytes) -> str:
    if not answer:
        return "the server closed the connection in answer to SSLRequest"
    if answer[:1] in (b"S", b"N"):
        return (
            "received unencrypted data after the server's answer to SSLRequest "
            "(a man-in-the-middle may be injecting data; CVE-2021-23222)"
        )
    if answer[:1] == b"E":
        return f"the server answered SSLRequest with an error: {_error_text(answer)}"
    return f"unexpected answer to SSLRequest: {answer[:16]!r}"


def _error_text(msg: bytes) -> str:
    """The severity and message fields of an ErrorResponse, without trusting its framing."""
    fields = dict(
        (part[:1], part[1:].decode("utf-8", "replace")) for part in msg[5:].split(b"\0") if part
    )
    return " ".join(v for k, v in fields.items() if k in (b"S", b"M")) or repr(msg[:64])


# -- tls-server-end-point (RFC 5929, section 4.1) -----------------------------------------

_HASH_OF_SIGNATURE = {
    # sha*WithRSAEncryption (PKCS #1)
    "1.2.840.113549.1.1.4": "sha256",  # md5 -> SHA-256, as the RFC says
    "1.2.840.113549.1.1.5": "sha256",  # sha1 -> SHA-256
    "1.2.840.113549.1.1.14": "sha224",
    "1.2.840.113549.1.1.11": "sha256",
    "1.2.840.113549.1.1.12": "sha384",
    "1.2.840.113549.1.1.13": "sha512",
    # ecdsa-with-* (RFC 5758)
    "1.2.840.10045.4.1": "sha256",
    "1.2.840.10045.4.3.1": "sha224",
    "1.2.840.10045.4.3.2": "sha256",
    "1.2.840.10045.4.3.3": "sha384",
    "1.2.840.10045.4.3.4": "sha512",
    # dsa-with-*
    "1.2.840.10040.4.3": "sha256",
    "2.16.840.1.101.3.4.3.1": "sha224",
    "2.16.840.1.101.3.4.3.2": "sha256",
}
_HASH_OIDS = {
    "1.3.14.3.2.26": "sha256",  # sha1 -> SHA-256
    "1.2.840.113549.2.5": "sha256",  # md5 -> SHA-256
    "2.16.840.1.101.3.4.2.4": "sha224",
    "2.16.840.1.101.3.4.2.1": "sha256",
    "2.16.840.1.101.3.4.2.2": "sha384",
    "2.16.840.1.101.3.4.2.3": "sha512",
}
_RSASSA_PSS = "1.2.840.113549.1.1.10"


def tls_server_end_point(der: bytes) -> bytes | None:
    """Hash the server certificate as ``tls-server-end-point`` channel binding requires.

    The hash is the one in the certificate's signature algorithm, SHA-256 when that is MD5
    or SHA-1. Returns None when the algorithm names no hash (Ed25519) or is unknown: then
    channel binding is not possible, and the caller must not offer SCRAM-SHA-256-PLUS.
    """
    try:
        name = _signature_hash(der)
    except (IndexError, ValueError):
        return None
    return hashlib.new(name, der).digest() if name else None


def _signature_hash(der: bytes) -> str | None:
    # Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm AlgorithmIdentifier, ... }
    cert, _ = _tlv(der, 0, 0x30)
    _, after_tbs = _tlv(der, cert, 0x30)
    alg, _ = _tlv(der, after_tbs, 0x30)
    oid_start, after_oid = _tlv(der, alg, 0x06)
    oid = _oid(der[oid_start:after_oid])
    if oid != _RSASSA_PSS:
        return _HASH_OF_SIGNATURE.get(oid)
    # RSASSA-PSS-params ::= SEQUENCE { hashAlgorithm [0] AlgorithmIdentifier DEFAULT sha1, ...}
    params, params_end = _tlv(der, after_oid, 0x30)
    if params == params_end or der[params] != 0xA0:
        return "sha256"  # the default, SHA-1, maps to SHA-256
    inner, _ = _tlv(der, params, 0xA0)
    hash_alg, _ = _tlv(der, inner, 0x30)
    start, end = _tlv(der, hash_alg, 0x06)
    return _HASH_OIDS.get(_oid(der[start:end]))


def _tlv(der: bytes, pos: int, tag: int) -> tuple[int, int]:
    """Check the DER tag at ``pos``; return (start of its content, end of its content)."""
    if der[pos] != tag:
        raise ValueError(f"DER: expected tag {tag:#x} at {pos}, got {der[pos]:#x}")
    length = der[pos + 1]
    pos += 2
    if length & 0x80:
        n = length & 0x7F
        length = int.from_bytes(der[pos : pos + n], "big")
        pos += n
    if pos + length > len(der):
        raise ValueError("DER: truncated")
    return pos, pos + length


def _oid(body: bytes) -> str:
    parts: list[int] = []
    value = 0
    for byte in body:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            parts.append(value)
            value = 0
    first = min(parts[0] // 40, 2)
    return ".".join(str(p) for p in [first, parts[0] - 40 * first, *parts[1:]])
