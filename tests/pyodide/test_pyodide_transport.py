"""The browser WebSocket transport's own logic, run under CPython against a scripted WebSocket.

The fake plays the browser: the test fires `open`, `message`, `error` and `close` events the way
a page's event loop would, and inspects what the transport sent.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from driver.errors import InterfaceError, TransportError
from driver.transport import pyodide as pt
from driver.transport.pyodide import FFI, BrowserWebSocketStream, open_websocket


class ArrayBuffer:
    """Stands in for a JsProxy of an ArrayBuffer (what binaryType "arraybuffer" delivers)."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def to_bytes(self) -> bytes:
        return self.data


class Event:
    def __init__(self, **kw: Any) -> None:
        self.__dict__.update(kw)


class Proxy:
    """What `create_proxy` returns: callable from "JS", destroyable exactly once."""

    def __init__(self, fn: Any) -> None:
        self.fn = fn
        self.destroyed = False

    def __call__(self, event: Any) -> None:
        assert not self.destroyed, "a destroyed proxy was called"
        self.fn(event)

    def destroy(self) -> None:
        assert not self.destroyed, "proxy destroyed twice"
        self.destroyed = True


class FakeWebSocket:
    def __init__(self, url: str) -> None:
        self.url = url
        self.readyState = pt.CONNECTING
        self.binaryType = "blob"
        self.sent: list[bytes] = []
        self.close_calls: list[tuple[int, ...]] = []
        self.onopen: Any = None
        self.onmessage: Any = None
        self.onerror: Any = None
        self.onclose: Any = None
        self.buffered: list[int] = []  # successive bufferedAmount readings, then 0
        self.answer_close = True

    @property
    def bufferedAmount(self) -> int:
        return self.buffered.pop(0) if self.buffered else 0

    def send(self, data: Any) -> None:
        if self.readyState == pt.CONNECTING:
            raise RuntimeError("InvalidStateError: still in CONNECTING state")
        assert isinstance(data, JsBytes)
        self.sent.append(data.data)

    def close(self, *args: int) -> None:
        self.close_calls.append(args)
        if self.readyState in (pt.CONNECTING, pt.OPEN):
            self.readyState = pt.CLOSING
            if self.answer_close:
                # The browser fires close asynchronously, after the peer's close frame.
                asyncio.get_running_loop().call_soon(self.fire_close, 1000, "")

    # What the page's event loop does:

    def fire_open(self) -> None:
        self.readyState = pt.OPEN
        self.onopen(Event(type="open"))

    def fire_message(self, data: bytes | str) -> None:
        payload: Any = data if isinstance(data, str) else ArrayBuffer(data)
        self.onmessage(Event(type="message", data=payload))

    def fire_error(self) -> None:
        self.onerror(Event(type="error"))

    def fire_close(self, code: int, reason: str = "") -> None:
        self.readyState = pt.CLOSED
        if self.onclose is not None:
            self.onclose(Event(type="close", code=code, reason=reason, wasClean=code != 1006))


class JsBytes:
    """What `to_js(bytes)` returns: a Uint8Array copy."""

    def __init__(self, data: bytes) -> None:
        self.data = data


class FakeBrowser:
    def __init__(self) -> None:
        self.sockets: list[FakeWebSocket] = []
        self.proxies: list[Proxy] = []
        self.ffi = FFI(new_websocket=self._new, create_proxy=self._proxy, to_js=JsBytes)

    def _new(self, url: str) -> FakeWebSocket:
        if not url.startswith(("ws://", "wss://")):
            raise RuntimeError("SyntaxError: The URL's scheme must be either 'ws' or 'wss'")
        ws = FakeWebSocket(url)
        self.sockets.append(ws)
        return ws

    def _proxy(self, fn: Any) -> Proxy:
        p = Proxy(fn)
        self.proxies.append(p)
        return p


async def opened(browser: FakeBrowser, url: str = "ws://proxy:1/v2?address=db:5432") -> Any:
    task = asyncio.ensure_future(open_websocket(url, ffi=browser.ffi))
    await asyncio.sleep(0)  # let the task create the socket: a scheduling step, not a wait
    ws = browser.sockets[-1]
    assert not task.done()
    ws.fire_open()
    stream = await task
    return stream, ws


# Opening.


async def test_open_sets_arraybuffer_and_waits_for_open() -> None:
    browser = FakeBrowser()
    stream, ws = await opened(browser)
    assert isinstance(stream, BrowserWebSocketStream)
    assert ws.binaryType == "arraybuffer"
    assert ws.url == "ws://proxy:1/v2?address=db:5432"


async def test_refused_open_raises_transport_error_with_url_and_code() -> None:
    browser = FakeBrowser()
    task = asyncio.ensure_future(open_websocket("ws://proxy:1/v2?address=x:1", ffi=browser.ffi))
    await asyncio.sleep(0)
    ws = browser.sockets[-1]
    ws.fire_error()
    ws.fire_close(1006)
    with pytest.raises(TransportError, match=r"ws://proxy:1/v2\?address=x:1.*1006"):
        await task
    await asyncio.sleep(0)  # the release is scheduled after the close handler returns
    assert all(p.destroyed for p in browser.proxies)
    assert ws.onmessage is None


async def test_no_proxy_fails_at_once_naming_the_setting() -> None:
    browser = FakeBrowser()
    with pytest.raises(InterfaceError, match="ws_proxy"):
        await open_websocket(None, ffi=browser.ffi)
    assert browser.sockets == []


async def test_malformed_url_raises_transport_error() -> None:
    with pytest.raises(TransportError, match="cannot open WebSocket to http://x"):
        await open_websocket("http://x", ffi=FakeBrowser().ffi)


async def test_cancelled_open_closes_the_socket_and_frees_proxies() -> None:
    browser = FakeBrowser()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0):
            await open_websocket("ws://proxy:1/v2?address=db:1", ffi=browser.ffi)
    ws = browser.sockets[-1]
    assert ws.close_calls == [()]
    assert all(p.destroyed for p in browser.proxies)


# Reading.


async def test_read_returns_messages_in_order_and_splits_by_max_bytes() -> None:
    stream, ws = await opened(FakeBrowser())
    ws.fire_message(b"abcdef")
    ws.fire_message(b"gh")
    assert await stream.read(4) == b"abcd"
    assert await stream.read(100) == b"ef"  # never merges two messages
    assert await stream.read(1) == b"g"
    assert await stream.read(1) == b"h"


async def test_whole_message_is_returned_without_copy() -> None:
    stream, ws = await opened(FakeBrowser())
    payload = b"x" * 1000
    ws.onmessage(Event(data=ArrayBuffer(payload)))
    assert await stream.read(65536) is payload


async def test_read_waits_for_the_next_message() -> None:
    stream, ws = await opened(FakeBrowser())
    reader = asyncio.ensure_future(stream.read(10))
    await asyncio.sleep(0)
    assert not reader.done()
    ws.fire_message(b"late")
    assert await reader == b"late"


async def test_empty_message_is_not_eof() -> None:
    stream, ws = await opened(FakeBrowser())
    ws.fire_message(b"")
    ws.fire_message(b"R")
    assert await stream.read(10) == b"R"


async def test_text_message_breaks_the_stream_like_the_cpython_transport() -> None:
    stream, ws = await opened(FakeBrowser())
    ws.fire_message(b"before")
    ws.fire_message("not binary")
    ws.fire_message(b"after")  # ignored: the stream is already broken
    assert ws.close_calls == [(1003,)]
    assert await stream.read(100) == b"before"
    with pytest.raises(TransportError, match="text message"):
        await stream.read(100)
    with pytest.raises(TransportError, match="text message"):
        await stream.write(b"x")


@pytest.mark.parametrize("code", [1000, 1001, 1005])
async def test_clean_close_is_eof_after_buffered_data(code: int) -> None:
    """1005 is what a browser reports for a close frame without a status code: the socket
    transport ends the stream on it with EOF too, so both must."""
    browser = FakeBrowser()
    stream, ws = await opened(browser)
    ws.fire_message(b"last")
    ws.fire_close(code)
    assert await stream.read(10) == b"last"
    assert await stream.read(10) == b""
    assert await stream.read(10) == b""
    await asyncio.sleep(0)  # the release is scheduled after the close handler returns
    assert all(p.destroyed for p in browser.proxies)


async def test_close_while_reading_wakes_the_reader_with_eof() -> None:
    stream, ws = await opened(FakeBrowser())
    reader = asyncio.ensure_future(stream.read(10))
    await asyncio.sleep(0)
    ws.fire_close(1001)
    assert await reader == b""


async def test_abnormal_close_raises_transport_error_after_data() -> None:
    stream, ws = await opened(FakeBrowser())
    ws.fire_message(b"partial")
    ws.fire_error()
    ws.fire_close(1006)
    assert await stream.read(100) == b"partial"
    with pytest.raises(TransportError, match=r"abnormally.*1006"):
        await stream.read(100)


async def test_error_then_close_1000_is_still_an_error() -> None:
    stream, ws = await opened(FakeBrowser())
    ws.fire_error()
    ws.fire_close(1000)
    with pytest.raises(TransportError):
        await stream.read(1)


async def test_second_concurrent_read_is_refused() -> None:
    stream, ws = await opened(FakeBrowser())
    first = asyncio.ensure_future(stream.read(10))
    await asyncio.sleep(0)
    with pytest.raises(InterfaceError, match="another read"):
        await stream.read(10)
    ws.fire_message(b"ok")
    assert await first == b"ok"


# Writing.


async def test_each_write_is_one_binary_message() -> None:
    stream, ws = await opened(FakeBrowser())
    await stream.write(b"Q\x00\x00\x00\x0dselect 1\x00")
    await stream.write(bytearray(b"X\x00\x00\x00\x04"))
    assert ws.sent == [b"Q\x00\x00\x00\x0dselect 1\x00", b"X\x00\x00\x00\x04"]
    assert all(type(m) is bytes for m in ws.sent)


async def test_write_waits_while_the_browser_buffer_is_over_high_water() -> None:
    stream, ws = await opened(FakeBrowser())
    high = BrowserWebSocketStream.HIGH_WATER
    ws.buffered = [high + 1, high + 1, high + 1, high]  # drains on the fourth look
    await stream.write(b"copy data")
    assert ws.buffered == []
    assert ws.sent == [b"copy data"]


async def test_write_after_close_raises_transport_error() -> None:
    stream, ws = await opened(FakeBrowser())
    ws.fire_close(1000)
    with pytest.raises(TransportError, match="closed"):
        await stream.write(b"x")
    assert ws.sent == []


async def test_failed_send_is_wrapped() -> None:
    stream, ws = await opened(FakeBrowser())

    def boom(_data: Any) -> None:
        raise RuntimeError("JsException: out of memory")

    ws.send = boom
    with pytest.raises(TransportError, match="out of memory"):
        await stream.write(b"x")


# Closing.


async def test_close_sends_1000_waits_for_close_event_and_frees_proxies() -> None:
    browser = FakeBrowser()
    stream, ws = await opened(browser)
    await stream.close()
    assert ws.close_calls == [(1000,)]
    assert ws.readyState == pt.CLOSED
    assert all(p.destroyed for p in browser.proxies)
    assert (ws.onopen, ws.onmessage, ws.onerror, ws.onclose) == (None, None, None, None)
    assert await stream.read(1) == b""
    await stream.close()  # idempotent
    assert ws.close_calls == [(1000,)]


async def test_close_is_bounded_when_the_peer_never_answers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    browser = FakeBrowser()
    stream, ws = await opened(browser)
    ws.answer_close = False
    monkeypatch.setattr(BrowserWebSocketStream, "CLOSE_TIMEOUT", 0.01)
    await stream.close()
    assert all(p.destroyed for p in browser.proxies)
    assert ws.onclose is None  # a late close event cannot reach a destroyed proxy


# TLS policy when the runtime's ssl cannot wrap (Pyodide's stub ssl).


def test_tls_is_available_under_cpython() -> None:
    assert pt.tls_available() is True
    assert pt.browser_tls_attempts("require", "wss://p/v2?address=db:5432") is None


@pytest.mark.parametrize("sslmode", ["require", "verify-ca", "verify-full"])
def test_modes_promising_encryption_refuse_without_tls(
    monkeypatch: pytest.MonkeyPatch, sslmode: str
) -> None:
    monkeypatch.setattr(pt, "tls_available", lambda: False)
    with pytest.raises(InterfaceError, match=f"sslmode={sslmode}.*only as private"):
        pt.browser_tls_attempts(sslmode, "wss://p/v2?address=db:5432")


@pytest.mark.parametrize("sslmode", ["prefer", "allow", "disable"])
def test_other_modes_go_without_tls_and_warn_about_the_proxy_hop(
    monkeypatch: pytest.MonkeyPatch, sslmode: str
) -> None:
    monkeypatch.setattr(pt, "tls_available", lambda: False)
    with pytest.warns(pt.ProxyHopWarning, match="only as private as the proxy's network") as w:
        assert pt.browser_tls_attempts(sslmode, "wss://p/v2?address=db:5432") == (False,)
    assert w[0].filename == __file__  # the warning names the caller's line, not the driver's
    with pytest.warns(pt.ProxyHopWarning, match=r"not encrypted at all: ws://"):
        assert pt.browser_tls_attempts(sslmode, "ws://p/v2?address=db:5432") == (False,)
