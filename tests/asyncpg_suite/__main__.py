"""Run asyncpg 0.32.0's test suite with asyncpg itself and with this driver; print the ratio.

    .venv/bin/python -m tests.asyncpg_suite [--modes asyncpg,tcp,ws] [--timeout 20] [-k EXPR]
                                            [--modules test_pool,test_cursor] [--json OUT]

Steps: ``pip download`` asyncpg's sdist into ``var/asyncpg-suite/`` (git-ignored, reused),
unpack it, start the real proxy; then, for each mode, start a fresh private cluster
(tools.pgcluster) with a superuser for asyncpg's tests and run each of asyncpg's test modules
in its own pytest process (``--tb=native``: CPython 3.11.7's AST constructor can fail
pytest's own traceback formatting with an INTERNALERROR that ends the module). The modes:
``asyncpg`` (the installed asyncpg: the reference), ``tcp`` (the driver, through the name map
in ``child/pgws_apg_plugin.py``) and ``ws`` (the driver through the proxy).
asyncpg's harness is pointed at our cluster by ``PGHOST``/``PGPORT``/``PGUSER``/
``PGPASSWORD``/``PGDATABASE``, which makes it use ``RunningCluster`` instead of starting one.

Counted: tests that pass with asyncpg here and do not read asyncpg's internals
(``internals.py``). A test that passes with the driver but fails with asyncpg is shown, not
counted.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.asyncpg_suite.internals import scan
from tools.pgcluster import Cluster, destroy, free_port, start_temp_cluster
from tools.procs import start_and_wait, stop

VERSION = "0.32.0"
ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("PGWS_APG_CACHE", ROOT / "var" / "asyncpg-suite"))
CHILD = Path(__file__).resolve().parent / "child"
SUPERUSER, SUPERPASS = "apg_super", "apg super pass"
MODES = ("asyncpg", "tcp", "ws")
TARGET = {"asyncpg": "asyncpg", "tcp": "driver", "ws": "driver-ws"}
# Whole modules that test asyncpg's own packaging or harness, not a driver's behaviour.
NOT_COUNTED_MODULES = {
    "test__sourcecode.py": "lints asyncpg's own source tree",
    "test__environment.py": "checks asyncpg's build environment and version",
    "test_test.py": "tests asyncpg's test harness",
    "test_subinterpreters.py": "loads asyncpg's C extension in subinterpreters",
}


def fetch_sdist() -> Path:
    """The unpacked sdist (downloaded with pip once, then reused).

    Tests run from a copy of ``tests/`` in ``suite/``: next to the sdist's ``asyncpg/``
    source tree, ``import asyncpg`` would find that uncompiled copy instead of the installed
    asyncpg.
    """
    dest = CACHE / f"asyncpg-{VERSION}"
    if (dest / "tests").is_dir():
        _copy_tests(dest)
        return dest
    CACHE.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps",
         f"asyncpg=={VERSION}", "-d", str(CACHE)],
        check=True, timeout=600,
    )  # fmt: skip
    with tarfile.open(CACHE / f"asyncpg-{VERSION}.tar.gz") as tar:
        tar.extractall(CACHE, filter="data")
    _copy_tests(dest)
    return dest


def _copy_tests(sdist: Path) -> None:
    suite = CACHE / "suite"
    if not (suite / "tests").is_dir():
        shutil.copytree(sdist / "tests", suite / "tests")


@dataclass
class Result:
    outcome: str  # passed / failed / skipped / error
    message: str = ""
    duration: float = 0.0


@dataclass
class Run:
    mode: str
    results: dict[str, Result] = field(default_factory=dict)
    seconds: float = 0.0


def _test_key(nodeid: str) -> str:
    return nodeid.split("/")[-1]  # "test_pool.py::TestPool::test_x"


def run_module(
    sdist: Path, module: str, mode: str, env: dict[str, str], timeout: float, kexpr: str | None
) -> dict[str, Result]:
    out = CACHE / "results" / f"{mode}-{module}.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    ini = CACHE / "pytest.ini"
    ini.write_text("[pytest]\n")
    child_env = {
        **env,
        "PGWS_APG_TARGET": TARGET[mode],
        "PGWS_APG_SDIST": str(sdist),
        "PGWS_APG_RESULTS": str(out),
        "PGWS_APG_TIMEOUT": str(timeout),
        # the driver of this tree, whichever tree the venv's editable install points at
        "PYTHONPATH": os.pathsep.join((str(CHILD), str(ROOT))),
    }
    suite = CACHE / "suite"
    argv = [sys.executable, "-m", "pytest", "-c", str(ini), "--rootdir", str(suite),
            "-p", "pgws_apg_plugin", "-p", "no:cacheprovider", "-p", "no:timeout",
            "-p", "no:asyncio", "-q", "--no-header", "-o", "console_output_style=classic",
            "--tb=native", f"tests/{module}"]  # fmt: skip
    if kexpr:
        argv += ["-k", kexpr]
    # the per-phase deadline bounds each test; this bounds a process that ignores SIGALRM
    try:
        with open(out.with_suffix(".log"), "wb") as log:
            subprocess.run(argv, cwd=suite, env=child_env, timeout=1800,
                           stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    except subprocess.TimeoutExpired:
        pass
    if not out.exists():
        return {}
    return merge_reports(json.loads(raw) for raw in out.read_text().splitlines())


def merge_reports(records: Iterable[dict[str, Any]]) -> dict[str, Result]:
    """One Result per test from the child's per-phase reports, in their order: a failed
    setup or teardown fails the test, and so does any failed ``subTest`` (pytest 9 reports
    each failed subTest, then the test itself as passed)."""
    results: dict[str, Result] = {}
    for rec in records:
        key = _test_key(rec["nodeid"])
        prev = results.get(key)
        if rec["when"] == "collect":
            results[key] = Result("error", rec["message"])
        elif rec["when"] == "call" and prev is not None and prev.outcome == "failed":
            pass  # a failed subTest (pytest 9 reports each, then the test itself as passed)
        elif rec["when"] == "call" or prev is None:
            results[key] = Result(rec["outcome"], rec.get("message", ""), rec.get("duration", 0))
        elif rec["outcome"] == "failed" and prev.outcome != "failed":
            results[key] = Result("failed", "teardown: " + rec.get("message", ""))
    return results


def start_proxy() -> tuple[subprocess.Popen[bytes], str]:
    """The real proxy (one for the whole run: it may reach any loopback port)."""
    port = free_port()
    penv = {
        "LISTEN_PORT": f"127.0.0.1:{port}",
        "ALLOW_ADDR_REGEX": r"(127\.[0-9.]+|localhost|\[::1\]):[0-9]+",
    }
    proxy, _ = start_and_wait([sys.executable, "-m", "proxy"], "listening", env=penv)
    return proxy, f"127.0.0.1:{port}/v2"


def start_cluster(base_env: dict[str, str]) -> tuple[Cluster, dict[str, str]]:
    """A fresh private cluster with a superuser for asyncpg's tests, and the environment
    that points asyncpg's harness at it.

    Each mode gets its own: a test that fails before its tearDown leaves a table, a type or
    a role behind, and in a shared cluster that would fail the same test in the next mode
    with "already exists", charging one mode's failure to the other.
    """
    cluster = start_temp_cluster()
    pw = SUPERPASS.replace("'", "''")
    cluster.psql(f"CREATE ROLE {SUPERUSER} LOGIN SUPERUSER PASSWORD '{pw}'", db="postgres")
    env = {
        **{k: v for k, v in base_env.items() if not k.startswith("PG")},  # PGWS_* too
        "PGHOST": "127.0.0.1",
        "PGPORT": str(cluster.port),
        "PGUSER": SUPERUSER,
        "PGPASSWORD": SUPERPASS,
        "PGDATABASE": "postgres",
    }
    return cluster, env


def _causes(run: Run, keys: list[str]) -> list[tuple[str, list[str]]]:
    """Failures grouped by the first line of their error, numbers and quoted names blurred."""
    groups: dict[str, list[str]] = collections.defaultdict(list)
    for key in keys:
        res = run.results.get(key)
        collect = run.results.get(key.split("::")[0])
        if res is None and collect is not None:
            errs = [ln for ln in collect.message.splitlines() if ln.startswith("E ")]
            text = "module not imported: " + (errs[-1][1:].strip() if errs else "?")
        elif res is None:
            text = "not run: the module's process ended early (see results/MODE-MODULE.log)"
        else:
            text = res.message.strip().splitlines()[0] if res.message.strip() else res.outcome
        text = re.sub(r"0x[0-9a-f]+|\d+", "N", text)
        text = re.sub(r"'[^']{20,}'", "'...'", text)
        groups[text[:150]].append(key)
    return sorted(groups.items(), key=lambda kv: -len(kv[1]))


def summarize(
    runs: dict[str, Run], internals: dict[str, str], modules: list[str]
) -> dict[str, object]:
    ref = runs.get("asyncpg")
    summary: dict[str, object] = {"modes": {}}
    print(f"\n{'module':<28}" + "".join(f"{m:>26}" for m in runs))
    print(f"{'':<28}" + "".join(f"{'pass/fail/skip':>26}" for _ in runs))
    for module in modules:
        row = f"{module:<28}"
        for run in runs.values():
            c = collections.Counter(
                r.outcome for k, r in run.results.items() if k.startswith(module + "::")
            )
            row += f"{c['passed']:>10}/{c['failed'] + c['error']}/{c['skipped']:<14}"
        print(row)
    for mode, run in runs.items():
        if mode == "asyncpg" or ref is None:
            continue
        counted = [
            k for k, r in ref.results.items()
            if r.outcome == "passed" and k not in internals
            and k.split("::")[0] not in NOT_COUNTED_MODULES
        ]  # fmt: skip
        passed = [k for k in counted if run.results.get(k, Result("missing")).outcome == "passed"]
        hung = [k for k in counted if "PhaseTimeout" in run.results.get(k, Result("")).message]
        missing = [k for k in counted if k not in run.results]
        ratio = len(passed) / len(counted) if counted else 0.0
        print(
            f"\n{mode}: {len(passed)}/{len(counted)} = {ratio:.1%} of the counted tests that pass "
            f"with asyncpg ({len(hung)} hit the per-test deadline, {len(missing)} not run; "
            f"{run.seconds:.0f}s)"
        )
        summary["modes"][mode] = {  # type: ignore[index]
            "passed": len(passed), "counted": len(counted), "ratio": ratio,
            "timeouts": len(hung), "not_run": len(missing), "seconds": run.seconds,
        }  # fmt: skip
        print(f"  failures of counted tests by cause ({mode}):")
        for cause, keys in _causes(run, [k for k in counted if k not in passed]):
            print(f"  {len(keys):4}  {cause}")
    if ref is not None:
        ref_pass = sum(r.outcome == "passed" for r in ref.results.values())
        print(
            f"asyncpg itself: {ref_pass} passed of {len(ref.results)} "
            f"({ref.seconds:.0f}s); not counted: {len(internals)} tests reading asyncpg's "
            f"internals, modules {', '.join(sorted(NOT_COUNTED_MODULES))}"
        )
    return summary


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--modules", default="", help="comma-separated test_*.py names (default: all)")
    ap.add_argument("--timeout", type=float, default=20.0, help="per test phase, seconds")
    ap.add_argument("-k", dest="kexpr", default=None)
    ap.add_argument("--json", default=str(CACHE / "latest.json"), help="write all results here")
    ap.add_argument("--report", default=None, help="only summarize a saved --json file")
    args = ap.parse_args()
    if args.report:
        saved = json.loads(Path(args.report).read_text())
        saved_runs: dict[str, Run] = {}
        for mode, results in saved["results"].items():
            saved_runs[mode] = Run(mode, {k: Result(**r) for k, r in results.items()})
            saved_runs[mode].seconds = saved["summary"].get("seconds", {}).get(mode, 0.0)
        modules = sorted({k.split("::")[0] for r in saved_runs.values() for k in r.results})
        summarize(saved_runs, saved["internals"], modules)
        return 0
    modes = [m for m in args.modes.split(",") if m]
    if unknown := set(modes) - set(MODES):
        ap.error(f"unknown mode(s): {', '.join(sorted(unknown))}")
    sdist = fetch_sdist()
    tests_dir = sdist / "tests"
    modules = sorted(p.name for p in tests_dir.glob("test_*.py"))
    if args.modules:
        wanted = {m if m.endswith(".py") else f"{m}.py" for m in args.modules.split(",")}
        modules = [m for m in modules if m in wanted]
    internals = scan(tests_dir)
    proxy, ws_proxy = start_proxy()
    runs: dict[str, Run] = {}
    try:
        for mode in modes:
            run = runs[mode] = Run(mode)
            t0 = time.monotonic()
            cluster, env = start_cluster(dict(os.environ))
            env["PGWS_APG_WS_PROXY"] = ws_proxy
            try:
                for module in modules:
                    m0 = time.monotonic()
                    res = run_module(sdist, module, mode, env, args.timeout, args.kexpr)
                    run.results.update(res)
                    c = collections.Counter(r.outcome for r in res.values())
                    print(f"[{mode}] {module}: {dict(c)} in {time.monotonic() - m0:.0f}s",
                          flush=True)  # fmt: skip
            finally:
                destroy(cluster)
            run.seconds = time.monotonic() - t0
    finally:
        stop(proxy)
    summary = summarize(runs, internals, modules)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    summary["seconds"] = {m: run.seconds for m, run in runs.items()}
    Path(args.json).write_text(json.dumps({
        "summary": summary,
        "internals": internals,
        "results": {m: {k: vars(r) for k, r in run.results.items()} for m, run in runs.items()},
    }, indent=1))  # fmt: skip
    print(f"details: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
