"""Runs SQLAlchemy's own PostgreSQL tests against the ``postgresql+pgws`` dialect and, in the
same run, against SQLAlchemy's asyncpg dialect, on a private cluster; prints the comparison.

SQLAlchemy's tests come from its source distribution, downloaded with pip for the installed
SQLAlchemy version into ``var/sqla-suite/`` (git-ignored; never copied into the repository).
What runs: ``test/dialect/postgresql/`` and the dialect compliance suite
(``lib/sqlalchemy/testing/suite/`` through ``test/dialect/test_suite.py``).

Usage::

    .venv/bin/python -m tests.sqlalchemy_suite.run                 # asyncpg, pgws-tcp, pgws-ws
    .venv/bin/python -m tests.sqlalchemy_suite.run --mode pgws-ws -- -k JSON  # one mode

Each mode is one pytest process with a per-test timeout, its results kept as JUnit XML in
``var/sqla-suite/results/``; the summary lists, per module, passed / failed / errors /
skipped, and every test that passes with asyncpg but not with pgws. In the pgws modes a small
harness (``HARNESS_*`` below: a Requirements subclass and a pytest plugin) makes the tests that
SQLAlchemy selects by driver name answer for ``+pgws`` as for ``+asyncpg``, so that the same
tests are collected in every mode (STATUS.md lists them).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import subprocess
import sys
import tarfile
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tools.pgcluster import Cluster, destroy, free_port, start_temp_cluster  # noqa: E402
from tools.procs import start_and_wait, stop  # noqa: E402

WORK = ROOT / "var" / "sqla-suite"
TARGETS = ("test/dialect/postgresql", "test/dialect/test_suite.py")
MODES = ("asyncpg", "pgws-tcp", "pgws-ws")
USER, PASSWORD, DB = "scott", "tiger", "test"


def sdist_tree() -> Path:
    """The unpacked sdist of the installed SQLAlchemy version (downloaded once)."""
    import sqlalchemy

    version = sqlalchemy.__version__
    tree = WORK / f"sqlalchemy-{version}"
    if (tree / "test" / "conftest.py").is_file():
        return tree
    WORK.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "-q",
            "--no-binary",
            ":all:",
            "--no-deps",
            f"sqlalchemy=={version}",
            "-d",
            str(WORK),
        ],
        check=True,
    )
    (archive,) = WORK.glob(f"[sS][qQ][lL][aA]lchemy-{version}.tar.gz")
    with tarfile.open(archive) as tar:
        tar.extractall(WORK, filter="data")
    return tree


def prepare_database(pg: Cluster) -> None:
    """The database SQLAlchemy's PostgreSQL tests expect (its README.unittests.rst)."""
    pg.psql(
        "SET password_encryption = 'scram-sha-256';"
        f"CREATE ROLE {USER} LOGIN SUPERUSER PASSWORD '{PASSWORD}'",
        db="postgres",
    )
    pg.psql(f"CREATE DATABASE {DB} OWNER {USER}", db="postgres")
    pg.psql(
        f"CREATE SCHEMA test_schema AUTHORIZATION {USER};"
        f"CREATE SCHEMA test_schema_2 AUTHORIZATION {USER};"
        "CREATE EXTENSION hstore; CREATE EXTENSION citext",
        db=DB,
    )


@contextmanager
def proxy_for(pg: Cluster) -> Iterator[str]:
    """The real proxy process, allowed to reach only this cluster; yields its ws_proxy."""
    port = free_port()
    env = {
        "LISTEN_PORT": f"127.0.0.1:{port}",
        "ALLOW_ADDR_REGEX": rf"(127\.0\.0\.1|localhost):{pg.port}",
    }
    proc, _ = start_and_wait([sys.executable, "-m", "proxy"], "listening", env=env)
    try:
        yield f"127.0.0.1:{port}/v2"
    finally:
        stop(proc)


def url_for(mode: str, pg: Cluster, ws_proxy: str) -> str:
    base = f"{USER}:{PASSWORD}@127.0.0.1:{pg.port}/{DB}"
    if mode == "asyncpg":
        return f"postgresql+asyncpg://{base}"
    if mode == "pgws-tcp":
        return f"postgresql+pgws://{base}"
    return f"postgresql+pgws://{base}?ws_proxy={ws_proxy}&use_secure_websocket=false"


# SQLAlchemy's tests choose some tests by driver name, listing asyncpg but not us. For the pgws
# modes the runner writes these two modules into var/sqla-suite/harness/ (they import
# SQLAlchemy's test tree, which exists only there) and loads the plugin with `-p`; the plugin sets
# the requirements class (SQLAlchemy's own `--requirements` option is overridden by setup.cfg).
# postgresql+pgws is SQLAlchemy's asyncpg adapter over a driver with asyncpg's API and value
# types, so each gate answers for +pgws what it answers for +asyncpg; nothing else changes.
HARNESS_REQUIREMENTS = '''"""test/requirements.py for +pgws: the properties gated by driver name."""

from sqlalchemy.testing import exclusions
from test.requirements import DefaultRequirements


class PgwsRequirements(DefaultRequirements):
    @property
    def range_types(self):
        # upstream: only_on(["+psycopg2", "+psycopg", "+asyncpg", "+pg8000"])
        return exclusions.only_on(["+psycopg2", "+psycopg", "+asyncpg", "+pg8000", "+pgws"])

    @property
    def multirange_types(self):
        # upstream: only_on(["+psycopg", "+asyncpg", "+pg8000"]) + only_on("postgresql >= 14")
        return exclusions.only_on(["+psycopg", "+asyncpg", "+pg8000", "+pgws"]) + (
            exclusions.only_on("postgresql >= 14")
        )

    @property
    def infinity_floats(self):
        # upstream: expected to fail except on sqlite, psycopg2, asyncpg and psycopg
        return exclusions.fails_on_everything_except(
            "sqlite",
            "postgresql+psycopg2",
            "postgresql+asyncpg",
            "postgresql+psycopg",
            "postgresql+pgws",
        ) + exclusions.skip_if("postgresql+pg8000", "seems to work on pg14 only, not earlier?")
'''

HARNESS_PLUGIN = '''"""pytest plugin: SQLAlchemy's asyncpg-only tests run for +pgws as for +asyncpg.

These tests exercise SQLAlchemy's asyncpg adapter (AsyncAdapt_asyncpg_connection, its
terminate(), transactional ping, codec hooks, multi-host URL handling, native inet values),
which postgresql+pgws is built on; upstream names the driver where it means the adapter.
"""

import sys

import pytest

# tests whose `+asyncpg` predicates (only_on / only_if / testing.against) also match +pgws
ASYNCPG_ADAPTER_TESTS = {
    "test_asyncpg_terminate_catch",
    "test_asyncpg_transactional_ping",
    "test_expression_positional",
    "test_default_native_inet_types",
    "test_multiple_host_real_connect",
}
_alias = False


def _install():
    from sqlalchemy.testing import exclusions
    from sqlalchemy.testing.suite import test_results

    spec_call = exclusions.SpecPredicate.__call__

    def call(self, config):
        if _alias and config is not None and self.op is None and "+" in self.db:
            name, driver = self.db.split("+")
            if driver == "asyncpg" and config.db.driver == "pgws":
                return name in ("", config.db.name)
        return spec_call(self, config)

    exclusions.SpecPredicate.__call__ = call

    # upstream's _is_server_side() knows drivers by name ("a huge issue ... for third party
    # dialects", its comment says) and answers False for any other
    ss_test = test_results.ServerSideCursorsTest
    is_server_side = ss_test._is_server_side

    def _is_server_side(self, cursor):
        if self.engine.dialect.driver == "pgws":
            return cursor.server_side
        return is_server_side(self, cursor)

    ss_test._is_server_side = _is_server_side


@pytest.hookimpl(trylast=True)
def pytest_sessionstart(session):
    # SQLAlchemy's --requirements option would be overridden: its session start re-reads
    # setup.cfg's requirement_cls after the command line; so set the class after that
    plugin_base = sys.modules["sqla_plugin_base"]  # as test/conftest.py bootstraps it
    plugin_base._setup_requirements("pgws_requirements:PgwsRequirements")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session, config, items):
    _install()
    for item in items:
        cls = getattr(item, "cls", None)
        if cls is not None and cls.__name__ == "AsyncPgTest":
            cls.__only_on__ = ["postgresql+asyncpg", "postgresql+pgws"]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    global _alias
    _alias = getattr(item, "originalname", item.name) in ASYNCPG_ADAPTER_TESTS
    try:
        yield
    finally:
        _alias = False
'''


def write_harness() -> list[str]:
    """Writes the pgws harness modules; returns the pytest arguments that load them."""
    harness = WORK / "harness"
    harness.mkdir(parents=True, exist_ok=True)
    (harness / "pgws_requirements.py").write_text(HARNESS_REQUIREMENTS)
    (harness / "pgws_plugin.py").write_text(HARNESS_PLUGIN)
    return ["-p", "pgws_plugin"]


@dataclass
class Outcome:
    status: str  # passed | failed | error | skipped
    message: str


def run_mode(tree: Path, mode: str, url: str, extra: list[str], timeout: int) -> dict[str, Outcome]:
    out_dir = WORK / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    xml = out_dir / f"{mode}.xml"
    xml.unlink(missing_ok=True)
    argv = [
        sys.executable,
        "-m",
        "pytest",
        *TARGETS,
        "--dburi",
        url,
        "-p",
        "no:cacheprovider",
        "--maxfail=100000",
        "-q",
        "--tb=line",
        f"--timeout={timeout}",
        f"--junitxml={xml}",
        "-o",
        "junit_family=xunit1",
        *(write_harness() if mode != "asyncpg" else []),
        *extra,
    ]
    log = out_dir / f"{mode}.log"
    print(f"[{mode}] {' '.join(argv[3:6])} ... (log: {log})", flush=True)
    env = {**os.environ, "PYTHONPATH": str(WORK / "harness") if mode != "asyncpg" else ""}
    with open(log, "w") as f:
        subprocess.run(argv, cwd=tree, stdout=f, stderr=subprocess.STDOUT, env=env)
    return read_junit(xml)


_DIALECT_IN_ID = re.compile(r"_postgresql\+\w+?_async")


def read_junit(xml: Path) -> dict[str, Outcome]:
    results: dict[str, Outcome] = {}
    if not xml.is_file():
        return results
    for case in ET.parse(xml).iter("testcase"):
        # class names carry the dialect and server version (SomeTest_postgresql+pgws_async_15_18):
        # one name per test across modes
        test_id = _DIALECT_IN_ID.sub("_postgresql", f"{case.get('classname')}::{case.get('name')}")
        status, message = "passed", ""
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                status = {"failure": "failed"}.get(child.tag, child.tag)
                lines = (child.get("message") or child.text or "").strip().splitlines()
                message = lines[0][:200] if lines else ""
                break
        results[test_id] = Outcome(status, message)
    return results


def module_of(test_id: str) -> str:
    classname = test_id.split("::", 1)[0]
    parts = classname.split(".")
    # test.dialect.postgresql.test_types.ArrayTest -> test/dialect/postgresql/test_types
    # sqlalchemy.testing.suite.test_types.JSONTest_... -> suite/test_types
    if "suite" in parts:
        i = parts.index("suite")
        return "suite/" + (parts[i + 1] if i + 1 < len(parts) else "?")
    return "/".join(p for p in parts if p.startswith("test") or p in ("dialect", "postgresql"))


def summarise(results: dict[str, dict[str, Outcome]]) -> str:
    lines: list[str] = []
    modes = list(results)
    per_module: dict[str, dict[str, collections.Counter[str]]] = collections.defaultdict(
        lambda: {m: collections.Counter() for m in modes}
    )
    for mode, res in results.items():
        for test_id, o in res.items():
            per_module[module_of(test_id)][mode][o.status] += 1
    header = f"{'module':44} " + " ".join(f"{m:>22}" for m in modes)
    lines += [header, " " * 45 + " ".join(f"{'pass/fail/err/skip':>22}" for _ in modes)]
    for module in sorted(per_module):
        cells = []
        for m in modes:
            c = per_module[module][m]
            cells.append(f"{c['passed']}/{c['failed']}/{c['error']}/{c['skipped']}".rjust(22))
        lines.append(f"{module[:44]:44} " + " ".join(cells))
    totals = []
    for m in modes:
        c = collections.Counter(o.status for o in results[m].values())
        totals.append(f"{c['passed']}/{c['failed']}/{c['error']}/{c['skipped']}".rjust(22))
    lines.append(f"{'TOTAL':44} " + " ".join(totals))
    base = results.get("asyncpg")
    if base:
        passed_base = {t for t, o in base.items() if o.status == "passed"}
        for m in modes:
            if m == "asyncpg":
                continue
            ours = results[m]
            both = {t for t in passed_base if ours.get(t) and ours[t].status == "passed"}
            ratio = len(both) / len(passed_base) if passed_base else 0.0
            only_ours = sum(
                1 for t, o in ours.items() if o.status == "passed" and t not in passed_base
            )
            lines.append(
                f"\n{m}: {len(both)} of the {len(passed_base)} tests that pass with asyncpg pass "
                f"({ratio:.1%}); passing only with {m}: {only_ours}"
            )
            missing = sorted(passed_base - both)
            causes: collections.Counter[str] = collections.Counter(
                (ours[t].message if t in ours else "not run")[:120] for t in missing
            )
            for cause, n in causes.most_common(40):
                lines.append(f"  {n:4}  {cause}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", action="append", choices=MODES, help="default: all three")
    parser.add_argument("--timeout", type=int, default=60, help="per test, seconds")
    parser.add_argument(
        "--baseline",
        type=Path,
        help="a summary.json of an earlier run: its asyncpg results are the comparison "
        "(instead of running the asyncpg mode again)",
    )
    parser.add_argument("pytest_args", nargs="*", help="passed to pytest (after --)")
    args = parser.parse_args(argv)
    modes = args.mode or list(MODES)
    tree = sdist_tree()
    pg = start_temp_cluster()
    results: dict[str, dict[str, Outcome]] = {}
    if args.baseline:
        saved = json.loads(args.baseline.read_text())["asyncpg"]
        results["asyncpg"] = {
            _DIALECT_IN_ID.sub("_postgresql", t): Outcome(st, msg) for t, (st, msg) in saved.items()
        }
        modes = [m for m in modes if m != "asyncpg"]
    try:
        prepare_database(pg)
        with proxy_for(pg) as ws_proxy:
            for mode in modes:
                results[mode] = run_mode(
                    tree, mode, url_for(mode, pg, ws_proxy), args.pytest_args, args.timeout
                )
    finally:
        destroy(pg)
    report = summarise(results)
    print(report)
    (WORK / "results" / "summary.txt").write_text(report + "\n")
    (WORK / "results" / "summary.json").write_text(
        json.dumps(
            {m: {t: [o.status, o.message] for t, o in r.items()} for m, r in results.items()},
            indent=0,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
