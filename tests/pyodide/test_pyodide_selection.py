"""Under Pyodide, `driver.connect()` picks the browser transport and the no-TLS policy by itself.

Runs in a fresh CPython that plays Pyodide: `sys.platform` says "emscripten", `websockets` is
unimportable, `ssl` cannot wrap (as in Pyodide's stub), and stand-ins for the `js` and
`pyodide.ffi` modules provide a WebSocket whose "server" answers the startup message with a
password failure. The browser test does the same
for real; this one fails fast, without Chromium, when the selection is broken.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

BLOCK_WEBSOCKETS = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "websockets" or name.startswith("websockets."):
            raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)")
        return None
sys.meta_path.insert(0, Block())
"""

PLAY_PYODIDE = """
import asyncio, json, struct, sys, types, warnings
import driver

opened = []

class WebSocket:
    def __init__(self, url):
        self.url, self.readyState, self.bufferedAmount = url, 0, 0
        opened.append(url)
        asyncio.get_running_loop().call_soon(self._open)

    @classmethod
    def new(cls, url):
        return cls(url)

    def _open(self):
        self.readyState = 1
        self.onopen(types.SimpleNamespace(type="open"))

    def send(self, data):
        fields = (b"SFATAL\\0VFATAL\\0C28P01\\0"
                  b"Mpassword authentication failed for user \\"u\\"\\0\\0")
        reply = b"E" + struct.pack("!i", len(fields) + 4) + fields
        buf = types.SimpleNamespace(to_bytes=lambda: reply)
        asyncio.get_running_loop().call_soon(self.onmessage, types.SimpleNamespace(data=buf))

    def close(self, *args):
        self.readyState = 3
        asyncio.get_running_loop().call_soon(
            self.onclose, types.SimpleNamespace(code=1000, reason=""))

js = types.ModuleType("js")
js.WebSocket = WebSocket
ffi = types.ModuleType("pyodide.ffi")
ffi.create_proxy = lambda fn: fn
ffi.to_js = lambda data: data
pyodide = types.ModuleType("pyodide")
pyodide.ffi = ffi
sys.modules.update({"js": js, "pyodide": pyodide, "pyodide.ffi": ffi})
sys.platform = "emscripten"

import ssl
def stub_wrap_bio(self, *args, **kwargs):  # what Pyodide's stub ssl module does
    raise NotImplementedError("SSL is not supported in Pyodide")
ssl.SSLContext.wrap_bio = stub_wrap_bio

async def attempt(sslmode):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            await driver.connect(f"postgresql://u:p@db.internal:5432/x?sslmode={sslmode}",
                                 ws_proxy="proxy.internal:9/v2", use_secure_websocket=False,
                                 timeout=10)
            error = None
        except driver.Error as exc:
            error = [type(exc).__name__, str(exc)]
    return {"error": error, "warnings": [[type(w.message).__name__, str(w.message)]
                                         for w in caught]}

async def main():
    out = {"prefer": await attempt("prefer"), "urls": list(opened)}
    out["require"] = await attempt("require")
    out["urls_after_require"] = list(opened)
    out["websockets_loaded"] = any(m.startswith("websockets") for m in sys.modules)
    print(json.dumps(out))

asyncio.run(main())
"""


def test_connect_under_pyodide_uses_the_browser_websocket_without_tls() -> None:
    r = subprocess.run(
        [sys.executable, "-c", BLOCK_WEBSOCKETS + PLAY_PYODIDE],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout.strip().splitlines()[-1])

    # prefer: the browser WebSocket to the proxy, no SSLRequest (no TLS in Pyodide), and the
    # server's answer to the startup message surfaces as the typed error.
    assert got["urls"] == ["ws://proxy.internal:9/v2?address=db.internal:5432"]
    assert got["prefer"]["error"][0] == "InvalidPasswordError", got["prefer"]
    hop = [w for w in got["prefer"]["warnings"] if w[0] == "ProxyHopWarning"]
    assert len(hop) == 1 and "not encrypted at all" in hop[0][1]

    # require: refused before anything is opened, naming the reason.
    assert got["require"]["error"][0] == "InterfaceError"
    assert "sslmode=require" in got["require"]["error"][1]
    assert got["urls_after_require"] == got["urls"]
    assert got["websockets_loaded"] is False
