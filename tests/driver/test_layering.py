"""Architecture rules that are cheap to check: the core does no I/O, exports match."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import driver

DRIVER = Path(driver.__file__).parent


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.add("." * node.level + (node.module or ""))
    return names


def test_protocol_core_imports_no_io() -> None:
    banned = {"asyncio", "socket", "ssl", "websockets", "selectors"}
    for path in (DRIVER / "protocol").glob("*.py"):
        for name in _imports(path):
            assert name.split(".")[0] not in banned, f"{path.name} imports {name}"
            assert "transport" not in name, f"{path.name} imports {name}"


def test_transports_do_not_import_the_protocol() -> None:
    for name in ("base.py", "tcp.py", "websocket.py", "__init__.py"):
        for imported in _imports(DRIVER / "transport" / name):
            # the driver's own sans-I/O core, by relative or absolute name (websockets has a
            # `protocol` module of its own, which is fine)
            ours = imported.startswith(("..protocol", "driver.protocol"))
            assert not ours, f"{name} imports {imported}"


def test_all_lists_real_public_names() -> None:
    for name in driver.__all__:
        assert hasattr(driver, name), name
    public = {n for n in vars(driver) if not n.startswith("_")}
    modules = {n for n in public if type(getattr(driver, n)).__name__ == "module"}
    assert public - modules - set(driver.__all__) == set()
    for name in ("connect", "Connection", "Record", "errors", "PostgresError"):
        assert name in driver.__all__


def test_errors_all_is_complete() -> None:
    errors = importlib.import_module("driver.errors")
    for name in errors.__all__:
        assert hasattr(errors, name)


def test_import_driver_without_websockets() -> None:
    # The WebSocket backend is imported only when used, so a missing library is no obstacle.
    code = (
        "import sys; sys.modules['websockets'] = None; import driver; "
        "assert 'driver.transport.websocket' not in sys.modules; print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ok"
