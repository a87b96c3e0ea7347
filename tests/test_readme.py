"""Every CPython example of README.md runs, as written, against a live `make demo` (the real
tools.demo process: cluster, proxy, app, invented sample), so the README cannot drift. Only the
demo's default port numbers are replaced by the ports this test's demo got (tests/readme.py);
Pyodide examples run in Chromium in tests/pyodide/test_pyodide_readme.py."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import Demo
from tests.readme import ROOT, Snippet, snippets

CPYTHON = [s for s in snippets() if not s.pyodide]


def test_the_readmes_have_examples_for_both_runtimes() -> None:
    assert len(CPYTHON) >= 1 and len([s for s in snippets() if s.pyodide]) >= 2


@pytest.mark.parametrize("snippet", CPYTHON, ids=[s.name for s in CPYTHON])
def test_readme_example_runs_against_the_demo(snippet: Snippet, demo: Demo) -> None:
    code = snippet.for_ports(demo.pg, demo.proxy, demo.app, sql=demo.sql)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=60, cwd=ROOT)
    assert r.returncode == 0, f"{snippet.name} failed:\n{r.stderr}"
    assert "Traceback" not in r.stderr
    assert r.stdout.strip(), f"{snippet.name} printed nothing"
