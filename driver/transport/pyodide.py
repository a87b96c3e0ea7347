"""The WebSocket transport under Pyodide: the browser's own `WebSocket`, reached through `js`.

In the browser there are no sockets and the `websockets` library cannot run, but the page's
`WebSocket` can reach the same proxy, so this module gives the driver the same `Stream`
(read/write/close) on top of it, with the same proxy addressing as the CPython transport.

The browser API pushes every message as an event and has no way to pause reception, so the
received messages are kept as the browser delivered them (one `bytes` per message, no extra
copy or concatenation) until `read()` hands them out; there is no queue of our own in between.
Sending has a high-water mark on `bufferedAmount`, the one backpressure signal the API offers.
"""

from __future__ import annotations

import asyncio
import collections
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from driver.errors import InterfaceError, TransportError
from driver.transport.base import CLEAN_CLOSE

__all__ = [
    "BrowserWebSocketStream",
    "ProxyHopWarning",
    "browser_tls_attempts",
    "open_websocket",
    "tls_available",
]

# WebSocket.readyState values (HTML Living Standard, "The WebSocket interface").
CONNECTING, OPEN, CLOSING, CLOSED = 0, 1, 2, 3


class ProxyHopWarning(UserWarning):
    """The connection is not encrypted all the way to the Postgres server."""


def tls_available() -> bool:
    """Whether this runtime's `ssl` can run TLS over an in-memory stream.

    Pyodide ships a stub `ssl` whose `MemoryBIO` exists but whose `wrap_bio` raises, so only
    trying it tells the truth. Cheap: no handshake, no certificates loaded.
    """
    try:
        import ssl

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO(), server_hostname="localhost")
    except (ImportError, AttributeError, NotImplementedError):
        return False
    return True


def browser_tls_attempts(sslmode: str, url: str | None) -> tuple[bool, ...] | None:
    """The TLS choice of each connect attempt under Pyodide, or None when TLS works here.

    Without in-process TLS the only encryption left is wss:// to the proxy. `prefer`,
    `allow` and `disable` then connect without TLS to Postgres and warn (once per call site)
    that the proxy-to-database hop is only as private as the proxy's network; the modes
    that promise encryption to the server refuse instead of silently downgrading.

    Args:
        sslmode: the connection's sslmode (libpq's names).
        url: the proxy URL; ws:// means nothing at all is encrypted.

    Returns:
        None when `ssl` works here (use the usual policy), else `(False,)`.

    Raises:
        InterfaceError: sslmode is require, verify-ca or verify-full.
    """
    if tls_available():
        return None
    if sslmode in ("require", "verify-ca", "verify-full"):
        raise InterfaceError(
            f"sslmode={sslmode} needs TLS to the Postgres server, which this Python runtime "
            "cannot do (Pyodide's ssl module is a stub). Use sslmode=prefer or disable with a "
            "wss:// proxy; the proxy-to-database hop is then only as private as the proxy's "
            "network."
        )
    if url is not None and url.startswith("ws://"):
        message = (
            f"connection via {url} is not encrypted at all: ws:// to the proxy, and no TLS to "
            "Postgres in this runtime (Pyodide's ssl module is a stub)"
        )
    else:
        message = (
            "no TLS to Postgres in this runtime (Pyodide's ssl module is a stub): the "
            "connection is encrypted only up to the proxy (wss://); the proxy-to-database hop "
            "is only as private as the proxy's network"
        )
    warnings.warn(message, ProxyHopWarning, stacklevel=_caller_level())
    return (False,)


def _caller_level() -> int:
    """The ``stacklevel`` that names the first frame outside the driver (the caller's line of
    ``connect()``, however deep in the driver the warning is raised), counted for a
    ``warnings.warn`` made by the function that calls this one."""
    frame = sys._getframe(1)
    level = 1
    while frame.f_back is not None and frame.f_globals.get("__name__", "").startswith("driver."):
        frame = frame.f_back
        level += 1
    return level


@dataclass(frozen=True, slots=True)
class FFI:
    """The three JavaScript entry points the transport needs, so tests can pass fakes."""

    new_websocket: Callable[[str], Any]
    create_proxy: Callable[[Callable[[Any], None]], Any]
    to_js: Callable[[bytes], Any]


def pyodide_ffi() -> FFI:
    """Bind to Pyodide's `js` and `pyodide.ffi`, which exist only in a Pyodide runtime (by
    name, through importlib: there are no stubs for them to check against)."""
    from importlib import import_module

    js, ffi = import_module("js"), import_module("pyodide.ffi")
    return FFI(new_websocket=js.WebSocket.new, create_proxy=ffi.create_proxy, to_js=ffi.to_js)


class BrowserWebSocketStream:
    """A `Stream` on one browser WebSocket: each write is one binary message.

    Use `open_websocket()` to get one; it returns only once the connection is open.
    """

    #: `write()` waits while the browser holds more than this many unsent bytes.
    HIGH_WATER = 1 << 20
    #: How long `close()` waits for the closing handshake before letting go anyway.
    CLOSE_TIMEOUT = 2.0

    def __init__(self, ws: Any, url: str, ffi: FFI) -> None:
        self._ws = ws
        self._url = url
        self._ffi = ffi
        self._loop = asyncio.get_running_loop()
        self._chunks: collections.deque[bytes] = collections.deque()
        self._offset = 0  # bytes of self._chunks[0] already handed out
        self._waiter: asyncio.Future[None] | None = None
        self._opened: asyncio.Future[None] = self._loop.create_future()
        self._closed: asyncio.Future[None] = self._loop.create_future()
        self._error: TransportError | None = None
        self._saw_error = False  # an error event came; the close event says how it ended
        self._broken = False  # the peer broke the protocol; stop reading at once
        ws.binaryType = "arraybuffer"
        self._proxies = [
            ffi.create_proxy(self._on_open),
            ffi.create_proxy(self._on_message),
            ffi.create_proxy(self._on_error),
            ffi.create_proxy(self._on_close),
        ]
        ws.onopen, ws.onmessage, ws.onerror, ws.onclose = self._proxies

    # Browser event handlers: called by the page's event loop, never raise into it.

    def _on_open(self, _event: Any) -> None:
        if not self._opened.done():
            self._opened.set_result(None)

    def _on_message(self, event: Any) -> None:
        if self._broken:
            return
        data = event.data
        if isinstance(data, str):
            # Same rule as the CPython transport: the Postgres stream only travels as binary.
            self._broken = True
            self._error = TransportError(
                f"WebSocket {self._url} sent a text message; expected binary"
            )
            self._ws.close(1003)  # "unsupported data" (RFC 6455, section 7.4.1)
            self._wake()
            return
        chunk = bytes(data.to_bytes())
        if chunk:
            self._chunks.append(chunk)
            self._wake()

    def _on_error(self, _event: Any) -> None:
        # Browsers deliberately give no detail here; the close event that follows has the code.
        self._saw_error = True

    def _on_close(self, event: Any) -> None:
        code = int(getattr(event, "code", 1006))
        reason = str(getattr(event, "reason", "") or "")
        if not self._opened.done():
            detail = f": {reason}" if reason else ""
            self._opened.set_exception(
                TransportError(
                    f"WebSocket connection to {self._url} failed (close code {code}{detail}); "
                    "is the proxy running and does it allow this database address?"
                )
            )
        elif self._error is None and (code not in CLEAN_CLOSE or self._saw_error):
            detail = f": {reason}" if reason else ""
            self._error = TransportError(
                f"WebSocket to {self._url} closed abnormally (code {code}{detail})"
            )
        if not self._closed.done():
            self._closed.set_result(None)
        self._wake()
        # Destroying a proxy from inside its own call is unsafe: do it once this call returns.
        self._loop.call_soon(self._release)

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _release(self) -> None:
        """Detach the handlers and free their proxies so the page keeps no Python objects."""
        if not self._proxies:
            return
        ws = self._ws
        ws.onopen = ws.onmessage = ws.onerror = ws.onclose = None
        for p in self._proxies:
            destroy = getattr(p, "destroy", None)
            if destroy is not None:
                destroy()
        self._proxies = []

    async def _wait_open(self) -> None:
        try:
            await self._opened
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        """Close the browser WebSocket without waiting and let go of its handlers."""
        if self._ws.readyState in (CONNECTING, OPEN):
            self._ws.close()
        self._release()

    # The Stream interface.

    async def read(self, max_bytes: int) -> bytes:
        """Return up to `max_bytes` received bytes, waiting for a message if none is held.

        Returns:
            b"" once the peer closed the WebSocket cleanly and everything received was read.

        Raises:
            TransportError: the WebSocket closed abnormally (after everything received was read).
            InterfaceError: another `read()` is already waiting on this stream.
        """
        while not self._chunks:
            if self._closed.done() or self._broken:
                if self._error is not None:
                    raise self._error
                return b""
            if self._waiter is not None:
                raise InterfaceError("read() while another read() is waiting on this stream")
            self._waiter = self._loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        head = self._chunks[0]
        start = self._offset
        end = start + max_bytes
        if end >= len(head):
            self._chunks.popleft()
            self._offset = 0
            return head if start == 0 else head[start:]
        self._offset = end
        return head[start:end]

    async def write(self, data: bytes) -> None:
        """Send `data` as one binary message.

        Raises:
            TransportError: the WebSocket is not open, or the browser refused the message.
        """
        if self._ws.readyState != OPEN:
            raise self._error or TransportError(f"WebSocket to {self._url} is closed")
        try:
            self._ws.send(self._ffi.to_js(bytes(data)))
        except Exception as exc:  # pyodide.ffi.JsException and friends
            raise TransportError(f"WebSocket send to {self._url} failed: {exc}") from exc
        delay = 0.001
        # The browser offers no "drained" event, so poll its buffer, backing off to 50 ms.
        while self._ws.bufferedAmount > self.HIGH_WATER and self._ws.readyState == OPEN:
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)

    async def close(self) -> None:
        """Start the closing handshake and wait (bounded) for the close event."""
        if self._ws.readyState in (CONNECTING, OPEN):
            self._ws.close(1000)
        if not self._closed.done():
            try:
                async with asyncio.timeout(self.CLOSE_TIMEOUT):
                    await asyncio.shield(self._closed)
            except TimeoutError:
                pass  # the peer never answered; the browser finishes on its own
        self._release()


async def open_websocket(url: str | None, *, ffi: FFI | None = None) -> BrowserWebSocketStream:
    """Open a browser WebSocket to `url` (with `?address=host:port` in it) and wait until open.

    Callers bound the wait with their connect timeout; a cancelled open closes the socket.

    Args:
        url: the proxy URL the connection parameters produced; None when no proxy is set.
        ffi: stand-ins for Pyodide's `js` and `pyodide.ffi` (tests only).

    Raises:
        InterfaceError: no proxy configured; a browser page has no other way to Postgres.
        TransportError: the browser could not open it (proxy down, refused address, bad URL).
    """
    if url is None:
        raise InterfaceError(
            "no WebSocket proxy configured: under Pyodide the driver reaches Postgres only "
            "through a WebSocket-to-TCP proxy; pass ws_proxy='host:port/path' to connect() "
            "or set driver.config.ws_proxy"
        )
    api = ffi or pyodide_ffi()
    try:
        ws = api.new_websocket(url)
    except Exception as exc:  # a SyntaxError DOMException for a malformed URL
        raise TransportError(f"cannot open WebSocket to {url}: {exc}") from exc
    stream = BrowserWebSocketStream(ws, url, api)
    await stream._wait_open()
    return stream
