"""pytest plugin loaded into the child process that runs asyncpg's own tests.

It does three things and implements no driver behaviour:

* with ``PGWS_APG_TARGET=driver`` (or ``driver-ws``) it installs the name map: a package
  called ``asyncpg`` whose public names resolve to the driver's (``asyncpg.connect`` is
  ``driver.connect``, ``asyncpg.UniqueViolationError`` is looked up in ``driver.exceptions``,
  ...). asyncpg's test harness (``_testbase``, ``cluster``, ``serverversion``) is loaded from
  the unpacked sdist, since it is test infrastructure. asyncpg's internal modules
  (``protocol``, ``connect_utils``, ``utils``, ...) resolve to placeholders that raise
  ``AsyncpgInternalUsed`` when touched, so a test that reaches into them fails loudly;
  such tests are listed by the runner and not counted. A name the driver lacks raises
  AttributeError, like any missing API.
  ``driver-ws`` also points ``driver.config`` at the WebSocket proxy (``PGWS_APG_WS_PROXY``).
* a per-phase deadline (``PGWS_APG_TIMEOUT`` seconds, SIGALRM in the main thread) so that a
  hung setUp, test or tearDown fails that test and the run goes on;
* one JSON line per test phase in ``PGWS_APG_RESULTS``, flushed at once, so a module whose
  process dies still reports the tests it ran.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import signal
import sys
import types
from collections.abc import Generator, Iterable
from pathlib import Path
from typing import Any

import pytest

# asyncpg modules that are test infrastructure: taken from the sdist as they are.
_HARNESS = ("serverversion", "cluster", "_testbase", "_testbase.fuzzer")
# asyncpg's internal modules: placeholders (tests touching them are not counted).
_INTERNAL = (
    "protocol",
    "protocol.protocol",
    "protocol.record",
    "pgproto",
    "pgproto.pgproto",
    "pgproto.types",
    "connect_utils",
    "utils",
    "compat",
    "connresource",
    "introspection",
    "_asyncio_compat",
)
# asyncpg public module -> driver modules searched in order for each name.
_PUBLIC = {
    "": ("driver", "driver.types"),
    "exceptions": ("driver.exceptions", "driver.errors"),
    "connection": ("driver.connection", "driver"),
    "pool": ("driver.pool", "driver"),
    "types": ("driver.types", "driver"),
    "cursor": ("driver.cursor", "driver"),
    "transaction": ("driver.transaction", "driver"),
    "prepared_stmt": ("driver.prepared", "driver"),
}


class AsyncpgInternalUsed(Exception):
    """A test touched one of asyncpg's internals, which the driver does not imitate."""


class _Internal:
    """Stands for any attribute of an asyncpg internal module; raises on every use."""

    def __init__(self, name: str) -> None:
        object.__setattr__(self, "_name", name)

    def _fail(self, *args: Any, **kwargs: Any) -> Any:
        raise AsyncpgInternalUsed(f"asyncpg internal used: {self._name}")

    __call__ = _fail
    __iter__ = _fail
    __eq__ = _fail  # type: ignore[assignment]
    __hash__ = object.__hash__

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        return _Internal(f"{self._name}.{attr}")

    def __mro_entries__(self, bases: tuple[Any, ...]) -> tuple[type, ...]:
        return (_InternalBase,)


class _InternalBase:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise AsyncpgInternalUsed(f"asyncpg internal subclassed: {type(self).__name__}")


def _optional(name: str) -> types.ModuleType | None:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


class _Alias(types.ModuleType):
    """A module whose attributes are the driver's names (first driver module that has it)."""

    def __init__(self, name: str, sources: Iterable[str]) -> None:
        super().__init__(name)
        self._sources = [m for s in sources if (m := _optional(s)) is not None]

    def __getattr__(self, attr: str) -> Any:
        if attr == "__all__" and self._sources:
            return self._sources[0].__all__
        if attr.startswith("__"):
            raise AttributeError(attr)
        for module in self._sources:
            if hasattr(module, attr):
                return getattr(module, attr)
        raise AttributeError(f"driver has no {attr!r} (asyncpg name)")


# PostgreSQL protocol constants that asyncpg's tests read from its internals while a test
# module is being imported (a placeholder there would fail the whole module, not one test).
_PROTOCOL_CONSTANTS = {
    "asyncpg.connect_utils._SSL_REQUEST_CODE": 80877103,  # "SSLRequest" in Message Formats
}


class _InternalModule(types.ModuleType):
    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        name = f"{self.__name__}.{attr}"
        if name in _PROTOCOL_CONSTANTS:
            return _PROTOCOL_CONSTANTS[name]
        return _Internal(name)


def _load_source(name: str, path: Path) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(
        name, path, submodule_search_locations=[str(path.parent)] if path.name == "__init__.py"
        else None,
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def install_alias(sdist_pkg: Path) -> None:
    """Make ``import asyncpg`` (and its submodules) give the driver's names."""
    for key in [k for k in sys.modules if k == "asyncpg" or k.startswith("asyncpg.")]:
        del sys.modules[key]
    for sub, sources in _PUBLIC.items():
        name = f"asyncpg.{sub}" if sub else "asyncpg"
        module = _Alias(name, sources)
        if not sub:
            module.__path__ = []  # a package, but nothing is found on disk
        sys.modules[name] = module
    root = sys.modules["asyncpg"]
    for sub in _PUBLIC:
        if sub:
            setattr(root, sub, sys.modules[f"asyncpg.{sub}"])
    for sub in _INTERNAL:
        name = f"asyncpg.{sub}"
        sys.modules[name] = _InternalModule(name)
        parent, _, leaf = name.rpartition(".")
        setattr(sys.modules[parent], leaf, sys.modules[name])
    # serverversion (harness) needs asyncpg's ServerVersion tuple: give the harness asyncpg's
    # own pure-Python types module while it loads, then put the driver's names back.
    alias_types = sys.modules["asyncpg.types"]
    _load_source("asyncpg.types", sdist_pkg / "types.py")
    for sub in _HARNESS:
        rel = sub.replace(".", "/")
        path = sdist_pkg / rel / "__init__.py"
        if not path.exists():
            path = sdist_pkg / f"{rel}.py"
        module = _load_source(f"asyncpg.{sub}", path)
        parent, _, leaf = f"asyncpg.{sub}".rpartition(".")
        setattr(sys.modules[parent], leaf, module)
    sys.modules["asyncpg.types"] = alias_types
    root.types = alias_types  # type: ignore[attr-defined]


def _configure() -> None:
    target = os.environ.get("PGWS_APG_TARGET", "asyncpg")
    if target == "asyncpg":
        return
    install_alias(Path(os.environ["PGWS_APG_SDIST"]) / "asyncpg")
    if target == "driver-ws":
        import driver

        driver.config.ws_proxy = os.environ["PGWS_APG_WS_PROXY"]
        driver.config.use_secure_websocket = False


_configure()


class PhaseTimeout(Exception):
    """A test phase ran past the per-test deadline."""


def _alarm(signum: int, frame: Any) -> None:
    raise PhaseTimeout(f"phase exceeded {os.environ.get('PGWS_APG_TIMEOUT')}s")


def _timed() -> Generator[None, Any, None]:
    seconds = float(os.environ.get("PGWS_APG_TIMEOUT", "30"))
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, Any, Any]:
    with _ctx():
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, Any, Any]:
    with _ctx():
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, Any, Any]:
    with _ctx():
        return (yield)


def _ctx() -> Any:
    import contextlib

    return contextlib.contextmanager(_timed)()


_RESULTS = os.environ.get("PGWS_APG_RESULTS")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if not _RESULTS:
        return
    longrepr = ""
    if report.failed:
        crash = getattr(report.longrepr, "reprcrash", None)
        longrepr = crash.message if crash is not None else str(report.longrepr)[-2000:]
    elif report.skipped and isinstance(report.longrepr, tuple):
        longrepr = str(report.longrepr[2])
    line = {
        "nodeid": report.nodeid,
        "when": report.when,
        "outcome": report.outcome,
        "message": longrepr[:2000],
        "duration": round(report.duration, 3),
    }
    with open(_RESULTS, "a") as f:
        f.write(json.dumps(line) + "\n")


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if _RESULTS and report.failed:
        with open(_RESULTS, "a") as f:
            f.write(json.dumps({"nodeid": report.nodeid, "when": "collect",
                                "outcome": "failed",
                                "message": str(report.longrepr)[-2000:]}) + "\n")
