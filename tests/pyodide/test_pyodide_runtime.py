"""Pyodide in headless Chromium, loaded from this machine: the runtime, the driver's import, the
PBKDF2 fallback and the browser transport against the real proxy and Postgres.

These need no `driver.connect`: the transport test speaks the startup exchange by hand.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from conftest import LoadedPage, PlaygroundDB, Server

ROOT = Path(__file__).resolve().parents[2]


def pinned_pyodide_version() -> str:
    lock = json.loads((ROOT / "web" / "pyodide" / "package-lock.json").read_text())
    return str(lock["packages"]["node_modules/pyodide"]["version"])


async def test_pyodide_comes_from_this_server_only(
    loaded_page: LoadedPage, playground_server: Server
) -> None:
    origin = urlsplit(playground_server.url).netloc
    hosts = {urlsplit(u).netloc for u in loaded_page.requests if u.startswith("http")}
    assert hosts == {origin}, loaded_page.requests
    assert loaded_page.boot["pyodide"] == pinned_pyodide_version()
    print(
        f"\nPyodide {loaded_page.boot['python']} + driver bundle ready in "
        f"{loaded_page.boot['loadMs']:.0f} ms"
    )


async def test_import_driver_under_pyodide(loaded_page: LoadedPage) -> None:
    got = await loaded_page.python(
        """
import json, sys, importlib.util
import driver, driver.transport
from driver.transport.pyodide import tls_available
json.dumps({
    "platform": sys.platform,
    "tls_available": tls_available(),
    "websockets_installed": importlib.util.find_spec("websockets") is not None,
    "loaded": sorted(m for m in sys.modules if m.startswith(("driver", "websockets"))),
})
"""
    )
    assert got["platform"] == "emscripten"
    assert got["tls_available"] is False  # Pyodide's ssl is a stub: wrap_bio raises
    assert got["websockets_installed"] is False  # so `import driver` above proves the point
    assert "driver.transport.websocket" not in got["loaded"]
    assert "driver.transport.tcp" not in got["loaded"]


async def test_pbkdf2_fallback_under_pyodide(loaded_page: LoadedPage) -> None:
    want = hashlib.pbkdf2_hmac("sha256", b"pencil", b"salt\x00\xff", 4096).hex()
    got = await loaded_page.python(
        """
import hashlib, json, time
from driver.auth.pbkdf2 import pbkdf2_hmac, select_pbkdf2_hmac
from scramp.utils import pbkdf2_hmac_pure_python
missing = not hasattr(hashlib, "pbkdf2_hmac") and select_pbkdf2_hmac() is pbkdf2_hmac
t0 = time.perf_counter()
ours = pbkdf2_hmac("sha256", b"pencil", b"salt\\x00\\xff", 4096).hex()
t1 = time.perf_counter()
theirs = pbkdf2_hmac_pure_python(hashlib.sha256, b"pencil", b"salt\\x00\\xff", 4096).hex()
t2 = time.perf_counter()
json.dumps({"missing": missing, "ours": ours, "theirs": theirs,
            "ours_ms": (t1 - t0) * 1000, "scramp_ms": (t2 - t1) * 1000})
"""
    )
    assert got["missing"] is True  # the reason driver.auth.pbkdf2 exists
    assert got["ours"] == want
    assert got["theirs"] == want
    print(
        f"\nPBKDF2-SHA256 x4096 in Pyodide: driver.auth.pbkdf2 {got['ours_ms']:.1f} ms, "
        f"scramp's pure-Python fallback {got['scramp_ms']:.1f} ms"
    )


STARTUP_EXCHANGE = """
import json, struct
from driver.transport.pyodide import open_websocket

def startup(user, database):
    body = struct.pack("!i", 196608)
    for k, v in (("user", user), ("database", database)):
        body += k.encode() + b"\\0" + v.encode() + b"\\0"
    body += b"\\0"
    return struct.pack("!i", len(body) + 4) + body

async def messages(stream, until):
    buf, out = b"", []
    while True:
        chunk = await stream.read(7)  # tiny reads: messages split across reads and WS frames
        assert chunk, "EOF before " + until
        buf += chunk
        while len(buf) >= 5:
            n = struct.unpack("!i", buf[1:5])[0]
            if len(buf) < n + 1:
                break
            out.append((chr(buf[0]), buf[5:n + 1]))
            buf = buf[n + 1:]
            if out[-1][0] == until:
                return out

url = f"ws://{WS_PROXY}?address=127.0.0.1:{PORT}"
stream = await open_websocket(url)
await stream.write(startup("trust_user", DB))
first = await messages(stream, "Z")
query = b"select 6 * 7, current_user\\0"
await stream.write(b"Q" + struct.pack("!i", len(query) + 4) + query)
second = await messages(stream, "Z")
await stream.write(b"X\\0\\0\\0\\4")
eof = await stream.read(100)
await stream.close()
params = dict(p.split(b"\\0")[:2] for t, p in first if t == "S")
json.dumps({
    "url": url,
    "first": [t for t, _ in first],
    "server_version": params[b"server_version"].decode(),
    "second": [t for t, _ in second],
    "row": [p.hex() for t, p in second if t == "D"],
    "eof": eof.hex(),
})
"""


async def test_browser_transport_speaks_to_postgres_through_the_proxy(
    loaded_page: LoadedPage, playground_db: PlaygroundDB, playground_server: Server
) -> None:
    code = (
        f"WS_PROXY = {playground_server.ws_proxy!r}\nPORT = {playground_db.cluster.port}\n"
        f"DB = {playground_db.name!r}\n" + STARTUP_EXCHANGE
    )
    got = await loaded_page.python(code)
    assert got["url"] == (
        f"ws://{playground_server.ws_proxy}?address=127.0.0.1:{playground_db.cluster.port}"
    )
    assert got["first"][0] == "R" and got["first"][-1] == "Z"  # AuthenticationOk ... Ready
    assert got["server_version"].startswith("15")
    assert got["second"] == ["T", "D", "C", "Z"]
    # DataRow: 2 columns, "42" and "trust_user".
    row = bytes.fromhex(got["row"][0])
    assert row == b"\x00\x02" + b"\x00\x00\x00\x0242" + b"\x00\x00\x00\x0atrust_user"
    assert got["eof"] == ""  # Terminate: the server hangs up, the proxy closes, read() is EOF


async def test_browser_transport_reports_a_refused_address(
    loaded_page: LoadedPage, playground_server: Server
) -> None:
    got = await loaded_page.python(
        f"""
import json
from driver.errors import TransportError
from driver.transport.pyodide import open_websocket
try:
    await open_websocket("ws://{playground_server.ws_proxy}?address=127.0.0.1:1")
    out = {{"raised": None}}
except TransportError as exc:
    out = {{"raised": type(exc).__name__, "message": str(exc)}}
json.dumps(out)
"""
    )
    assert got["raised"] == "TransportError"
    assert "address=127.0.0.1:1" in got["message"]
    assert "1006" in got["message"]
