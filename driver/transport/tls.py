"""TLS over any byte stream (TCP, WebSocket, ...), with the standard library's SSLObject.

The TLS session runs between the driver and the database, whatever carries the bytes: a
WebSocket relay in the middle only ever sees ciphertext. This module knows nothing about
Postgres (the SSLRequest exchange lives in ``driver.tlsconnect``) and is the only place that
touches ``ssl.SSLObject`` and ``ssl.MemoryBIO``.

Every batch of ciphertext that OpenSSL produces before the driver next waits for the peer goes
to the inner stream in ONE ``write()``, so over a WebSocket a whole TLS flight (or a record
plus the client's Finished message) travels as one WebSocket message.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import TYPE_CHECKING

from ..errors import TransportError
from .base import describe_error

if TYPE_CHECKING:
    from .base import Stream

__all__ = ["TLSStream"]

# Ciphertext read from the inner stream per call: several full TLS records (16 KiB + overhead).
_CHUNK = 65536


class TLSStream:
    """A ``Stream`` that encrypts what it writes and decrypts what it reads over another one.

    Build it with ``await TLSStream.wrap(inner, ctx, server_hostname=...)``; the handshake has
    completed (and the peer certificate been checked as ``ctx`` demands) when that returns.
    """

    def __init__(
        self, inner: Stream, obj: ssl.SSLObject, incoming: ssl.MemoryBIO, outgoing: ssl.MemoryBIO
    ) -> None:
        self._inner = inner
        self._obj = obj
        self._in = incoming
        self._out = outgoing
        self._eof = False
        self._closed = False

    @classmethod
    async def wrap(
        cls,
        inner: Stream,
        ctx: ssl.SSLContext,
        *,
        server_hostname: str | None,
        flush_finished: bool = False,
    ) -> TLSStream:
        """Run the client handshake over ``inner`` and return the encrypted stream.

        Args:
            inner: the stream carrying the ciphertext; it must be positioned where the
                server expects a ClientHello (after the SSLRequest answer, for Postgres).
            ctx: client context; its verify_mode/check_hostname decide what is checked.
            server_hostname: the DATABASE host name, for SNI and the host name check (never
                the proxy's). IP addresses are checked against IP SANs and not sent as SNI.
            flush_finished: send the client's last handshake flight right away. By default
                it stays queued and leaves with the first ``write()`` (TLS 1.3: Finished and
                the startup message share one message), or before the first ``read()``.

        Raises:
            TransportError: handshake failure, certificate or host name rejected, or the
                inner stream ended. The inner stream is closed in that case.
        """
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        try:
            obj = ctx.wrap_bio(
                incoming, outgoing, server_side=False, server_hostname=server_hostname
            )
        except NotImplementedError as exc:  # Pyodide's stub ssl module
            raise TransportError(
                f"TLS is not available in this Python runtime: {describe_error(exc)}"
            ) from exc
        except (ssl.SSLError, ValueError) as exc:
            raise TransportError(
                f"TLS setup failed for {server_hostname!r}: {describe_error(exc)}"
            ) from exc
        stream = cls(inner, obj, incoming, outgoing)
        try:
            await stream._handshake()
            if flush_finished:
                await stream._flush()
        except BaseException:
            await stream._abort()
            raise
        return stream

    async def _handshake(self) -> None:
        while True:
            try:
                self._obj.do_handshake()
                return
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLCertVerificationError as exc:
                await self._flush_quietly()  # let the server see our alert
                raise TransportError(_describe_verify_error(exc, self._obj)) from exc
            except ssl.SSLError as exc:
                await self._flush_quietly()
                raise TransportError(f"TLS handshake failed: {describe_error(exc)}") from exc
            await self._flush()
            data = await self._inner.read(_CHUNK)
            if not data:
                raise TransportError("the server closed the connection during the TLS handshake")
            self._in.write(data)

    # -- Stream -------------------------------------------------------------------------

    async def read(self, max_bytes: int) -> bytes:
        """Decrypt up to ``max_bytes``; ``b""`` once the peer has closed (cleanly or not).

        Returns as soon as some plaintext is available, after draining every complete record
        already received (one call, many records: fewer trips through the protocol layer).
        """
        if self._eof:
            return b""
        await self._flush()  # e.g. our Finished, if no write() took it along
        chunks: list[bytes] = []
        size = 0
        while size < max_bytes:
            try:
                chunk = self._obj.read(max_bytes - size)
            except ssl.SSLWantReadError:
                if chunks:
                    break
                await self._flush()  # post-handshake replies, if OpenSSL queued any
                data = await self._inner.read(_CHUNK)
                if not data:
                    self._in.write_eof()
                else:
                    self._in.write(data)
                continue
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                # Clean close_notify or a bare TCP close: both are the end of the stream. The
                # Postgres protocol frames its own messages, so a truncated one is still caught.
                self._eof = True
                break
            except ssl.SSLError as exc:
                raise TransportError(f"TLS error while reading: {describe_error(exc)}") from exc
            if not chunk:
                self._eof = True
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)

    async def write(self, data: bytes) -> None:
        """Encrypt ``data`` and hand all pending ciphertext to the inner stream in one write."""
        if self._closed:
            raise TransportError("write on a closed TLS stream")
        view = memoryview(data)
        while view:
            try:
                n = self._obj.write(view)
            except ssl.SSLWantReadError:  # pragma: no cover - renegotiation, off in Postgres
                await self._flush()
                more = await self._inner.read(_CHUNK)
                if not more:
                    raise TransportError("the server closed the TLS connection") from None
                self._in.write(more)
                continue
            except ssl.SSLError as exc:
                raise TransportError(f"TLS error while writing: {describe_error(exc)}") from exc
            view = view[n:]
        await self._flush()

    async def close(self) -> None:
        """Send close_notify when possible, then close the inner stream (never raises)."""
        if self._closed:
            return
        self._closed = True
        try:
            self._obj.unwrap()
        except ssl.SSLError:
            pass  # unwrap wants the peer's close_notify too; ours is already queued
        await self._flush_quietly()
        await self._inner.close()

    def abort(self) -> None:
        """Drop the connection at once, without close_notify (for callers that cannot await,
        like ``Connection.terminate()``)."""
        self._closed = True
        abort = getattr(self._inner, "abort", None)
        if abort is not None:
            abort()
            return
        task = asyncio.get_running_loop().create_task(self._inner.close())
        task.add_done_callback(lambda t: t.cancelled() or t.exception())

    # -- introspection (channel binding, tests, logs) -------------------------------------

    @property
    def ssl_object(self) -> ssl.SSLObject:
        """The live SSLObject, for ``version()``, ``cipher()``, ``getpeercert()``."""
        return self._obj

    def peer_certificate_der(self) -> bytes | None:
        """The server's certificate in DER (the input of ``tls-server-end-point``)."""
        return self._obj.getpeercert(binary_form=True)

    # -- internals ----------------------------------------------------------------------

    async def _flush(self) -> None:
        if self._out.pending:
            await self._inner.write(self._out.read())

    async def _flush_quietly(self) -> None:
        try:
            await self._flush()
        except (TransportError, OSError):
            pass  # best effort: the connection is going away anyway

    async def _abort(self) -> None:
        self._closed = True
        try:
            await self._inner.close()
        except (TransportError, OSError):
            pass


def _describe_verify_error(exc: ssl.SSLCertVerificationError, obj: ssl.SSLObject) -> str:
    """Say which check failed and for which name, so a wrong sslmode/host is easy to fix."""
    reason = exc.verify_message or exc.reason or str(exc)
    host = obj.server_hostname
    if exc.verify_code == 62 or "hostname" in str(reason).lower():  # X509_V_ERR_HOSTNAME_MISMATCH
        return (
            f"TLS: the server certificate does not match host name {host!r} ({reason}); "
            "connect with the name in the certificate, or use sslmode=verify-ca"
        )
    if exc.verify_code == 64 or "ip address" in str(reason).lower():  # IP_ADDRESS_MISMATCH
        return (
            f"TLS: the server certificate does not match address {host!r} ({reason}); "
            "connect with the name in the certificate, or use sslmode=verify-ca"
        )
    return (
        f"TLS: the server certificate could not be verified ({reason}); give the CA with "
        "sslrootcert= or root_certs=, or use sslmode=require to skip verification"
    )
