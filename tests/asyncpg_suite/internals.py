"""Which of asyncpg's tests read its private attributes or internal modules (not counted).

A static scan of each test method's source: an attribute whose name starts with one
underscore read on anything but ``self``/``cls`` (``con._protocol``, ``pool._holders``), or a
name from asyncpg's internal modules (``connect_utils``, ``protocol``, ``serverversion``,
``utils``, the managed ``cluster``), imported at the top or inside the test, or a class of the
test module that subclasses one of asyncpg's classes to override its private methods
(``_introspect_types``, ``_get_statement``: hooks a driver with another inside never calls).
Such a test checks how asyncpg is built, not what a user sees, so a driver with another inside
cannot pass it and need not.
"""

from __future__ import annotations

import ast
from pathlib import Path

# names by which asyncpg's tests reach its internals (module aliases as the tests import them)
_INTERNAL_MODULES = {
    "connect_utils": "asyncpg.connect_utils (connection-parameter parsing internals)",
    "serverversion": "asyncpg.serverversion (version-string parser)",
    "protocol": "asyncpg.protocol (the Cython protocol)",
    "utils": "asyncpg.utils (private helpers)",
    "pg_cluster": "asyncpg.cluster (a cluster managed by asyncpg's harness)",
    "SCRAMAuthentication": "asyncpg's SCRAM implementation class",
    "SSLMode": "asyncpg.connect_utils.SSLMode",
    "split_server_version_string": "asyncpg.serverversion",
    "fuzzer": "asyncpg's fuzzing TCP proxy internals",
}
_INTERNAL_FROM = (
    "asyncpg.protocol", "asyncpg.connect_utils", "asyncpg.serverversion", "asyncpg.pgproto",
    "asyncpg._testbase.fuzzer",
)  # fmt: skip
# private attributes of the harness itself, not of asyncpg's objects
_HARNESS_PRIVATE = {"_testMethodName", "_pools", "_clusters", "_default_cluster", "_outcome"}


def scan_module(path: Path) -> dict[str, str]:
    """Map ``Class::test_name`` to why it is not counted, for one asyncpg test module."""
    tree = ast.parse(path.read_text())
    internal = dict(_INTERNAL_MODULES)
    for node in tree.body:  # names the module imports from asyncpg's internal modules
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(_INTERNAL_FROM):
            for alias in node.names:
                internal[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    out: dict[str, str] = {}
    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    for cls in classes.values():  # classes overriding asyncpg's private methods
        private = sorted(
            f.name
            for f in cls.body
            if isinstance(f, Method) and f.name.startswith("_") and not f.name.startswith("__")
        )
        if private and any(isinstance(b, ast.Attribute) for b in cls.bases):
            internal[cls.name] = (
                f"subclasses asyncpg's {ast.unparse(cls.bases[0])} to override its private "
                f"method(s) {', '.join(private)}"
            )
    for cls in classes.values():
        methods = _methods(cls, classes)
        for name, fn in methods.items():
            if not name.startswith("test"):
                continue
            reasons = sorted(_reasons_with_helpers(fn, methods, internal))
            if reasons:
                out[f"{cls.name}::{name}"] = "; ".join(reasons)
    return out


Method = ast.FunctionDef | ast.AsyncFunctionDef


def _methods(cls: ast.ClassDef, classes: dict[str, ast.ClassDef]) -> dict[str, Method]:
    """The class's methods, with those inherited from classes of the same module."""
    out: dict[str, Method] = {}
    for base in cls.bases:
        if isinstance(base, ast.Name) and base.id in classes and base.id != cls.name:
            out.update(_methods(classes[base.id], classes))
    out.update({f.name: f for f in cls.body if isinstance(f, Method)})
    return out


def _reasons_with_helpers(
    fn: Method, methods: dict[str, Method], internal: dict[str, str]
) -> set[str]:
    """A test's reasons, and those of the helper methods it calls (``self._helper()``)."""
    found: set[str] = set()
    fixtures = [methods[n] for n in ("setUp", "tearDown", "setUpClass") if n in methods]
    todo, seen = [fn, *fixtures], {fn.name, *(f.name for f in fixtures)}
    while todo:
        node = todo.pop()
        found |= _reasons(node, internal)
        for sub in ast.walk(node):
            if (
                isinstance(sub, ast.Attribute)
                and isinstance(sub.value, ast.Name)
                and sub.value.id == "self"
                and sub.attr in methods
                and sub.attr not in seen
                and not sub.attr.startswith("test")
            ):
                seen.add(sub.attr)
                todo.append(methods[sub.attr])
    return found


def _reasons(fn: ast.AST, internal: dict[str, str]) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(fn):
        if isinstance(node, ast.Attribute):
            attr = node.attr
            base = node.value
            owner = base.id if isinstance(base, ast.Name) else None
            if (
                attr.startswith("_")
                and not attr.startswith("__")
                and owner not in ("self", "cls")
                and attr not in _HARNESS_PRIVATE
            ):
                found.add(f"private attribute .{attr}")
            if owner == "asyncpg" and attr in ("protocol", "connect_utils", "serverversion"):
                found.add(_INTERNAL_MODULES[attr])
            if owner in internal:
                found.add(internal[owner])
            if (
                owner in ("self", "cls")
                and attr in ("cluster", "new_cluster", "proxy")
                and (_is_managed_cluster_use(node))
            ):
                found.add("asyncpg's harness-managed cluster or fuzzing proxy")
        elif isinstance(node, ast.Name) and node.id in internal:
            found.add(internal[node.id])
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(_INTERNAL_FROM):
            found.add(f"{node.module} (imported in the test)")
    return found


def _is_managed_cluster_use(node: ast.Attribute) -> bool:
    # self.new_cluster(...), self.proxy.*: asyncpg's harness; self.cluster alone is just the DSN
    return node.attr in ("new_cluster", "proxy")


def scan(tests_dir: Path) -> dict[str, str]:
    """``module.py::Class::test`` -> reason, for every asyncpg test module."""
    out: dict[str, str] = {}
    for path in sorted(tests_dir.glob("test_*.py")):
        for key, why in scan_module(path).items():
            out[f"{path.name}::{key}"] = why
    return out
