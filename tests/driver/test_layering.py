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


# ---- the middle layer: one Session awaits the stream; no import cycle -------------------

# Modules that handle a stream before any Session exists: opening the transport, the TLS
# negotiation, and the CancelRequest's own short-lived stream.
_CONNECT_PHASE = {"dial.py", "tlsconnect.py"}
_STREAM_METHODS = {"read", "write", "close", "abort", "drain", "readexactly"}


def _is_stream(node: ast.expr) -> bool:
    name = node.id if isinstance(node, ast.Name) else getattr(node, "attr", "")
    return "stream" in name.lower()


def _stream_uses(path: Path) -> list[str]:
    """Each place in a module that reads, writes, closes or holds another object's stream."""
    uses = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr in _STREAM_METHODS and _is_stream(node.func.value):
                uses.append(f"line {node.lineno}: .{node.func.attr}() on a stream")
        if isinstance(node, ast.Attribute) and node.attr == "_stream":
            uses.append(f"line {node.lineno}: ._stream")
    return uses


def test_only_the_session_touches_a_connections_stream() -> None:
    assert _stream_uses(DRIVER / "session.py"), "the check sees nothing: it is broken"
    for path in sorted(DRIVER.glob("*.py")):
        if path.name == "session.py" or path.name in _CONNECT_PHASE:
            continue
        assert _stream_uses(path) == [], f"{path.name} touches the stream"


def _module_name(path: Path) -> str:
    parts = path.relative_to(DRIVER.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _import_graph() -> dict[str, set[str]]:
    """driver module -> the driver modules it imports anywhere (module level, inside
    functions and under TYPE_CHECKING alike)."""
    paths = {_module_name(p): p for p in DRIVER.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in paths}
    for name, path in paths.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[: len(base) - (node.level - 1)]
                    module = ".".join(base + ([node.module] if node.module else []))
                else:
                    module = node.module or ""
                submodules = [f"{module}.{a.name}" for a in node.names]
                found = [s for s in submodules if s in paths]
                targets = found if len(found) == len(submodules) else [module, *found]
            graph[name].update(t for t in targets if t in paths and t != name)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_driver_has_no_import_cycle() -> None:
    graph = _import_graph()
    assert "driver.session" in graph["driver.connection"]  # the graph sees relative imports
    assert "driver.dial" in graph["driver.session"]  # and imports inside functions
    assert _cycles(graph) == []


def test_pool_slots_decide_without_awaiting() -> None:
    # Every bookkeeping step is taken whole, so no cancellation can split it; the pool awaits.
    tree = ast.parse((DRIVER / "poolslots.py").read_text())
    awaits = [n for n in ast.walk(tree) if isinstance(n, ast.Await | ast.AsyncFunctionDef)]
    assert awaits == []
    assert any(
        isinstance(n, ast.Await) for n in ast.walk(ast.parse((DRIVER / "pool.py").read_text()))
    )


def test_pool_uses_no_private_attribute_of_a_connection() -> None:
    tree = ast.parse((DRIVER / "pool.py").read_text())
    conn_names = {"conn", "c", "connection"}
    private = [
        f"line {n.lineno}: {n.value.id}.{n.attr}"
        for n in ast.walk(tree)
        if isinstance(n, ast.Attribute)
        and isinstance(n.value, ast.Name)
        and n.value.id in conn_names
        and n.attr.startswith("_")
    ]
    assert private == []
