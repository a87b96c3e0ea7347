"""`import driver` must work where `websockets` and sockets are missing (Pyodide), so the
backends may be imported only by the transports that use them. Checked in fresh interpreters,
since this test process has long imported everything.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Makes `websockets` unimportable, as it is in Pyodide.
BLOCK_WEBSOCKETS = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "websockets" or name.startswith("websockets."):
            raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)")
        return None
sys.meta_path.insert(0, Block())
"""


def run_python(code: str) -> object:
    r = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_import_driver_imports_no_transport_backend() -> None:
    loaded = run_python(
        """
import json, sys
import driver
print(json.dumps(sorted(m for m in sys.modules
                        if m.startswith(("websockets", "driver.transport.", "js", "pyodide")))))
"""
    )
    assert isinstance(loaded, list)
    assert not [m for m in loaded if m.startswith("websockets")], loaded
    assert "driver.transport.websocket" not in loaded
    assert "driver.transport.tcp" not in loaded
    assert "driver.transport.pyodide" not in loaded


def test_import_driver_without_websockets_installed() -> None:
    got = run_python(
        BLOCK_WEBSOCKETS
        + """
import json
import driver, driver.transport, driver.transport.pyodide, driver.auth.pbkdf2
try:
    import websockets
    blocked = False
except ModuleNotFoundError:
    blocked = True
print(json.dumps({"blocked": blocked, "public": sorted(getattr(driver, "__all__", []))}))
"""
    )
    assert isinstance(got, dict)
    assert got["blocked"] is True  # the import of driver above really ran without websockets
