"""The Pyodide examples of README.md and web/pyodide/README.md run, as written, in the real
playground page's Pyodide (Chromium) against a live `make demo`: only the demo's default port
numbers are replaced by the ports the test's demo got (tests/readme.py)."""

from __future__ import annotations

import pytest

from tests.conftest import Demo
from tests.pyodide.conftest import LoadedPage
from tests.readme import Snippet, snippets

PYODIDE = [s for s in snippets() if s.pyodide]


@pytest.mark.parametrize("snippet", PYODIDE, ids=[s.name for s in PYODIDE])
async def test_readme_example_runs_in_pyodide(
    snippet: Snippet, demo: Demo, loaded_page: LoadedPage
) -> None:
    code = snippet.for_ports(demo.pg, demo.proxy, demo.app)
    # The page's runner returns the last expression as JSON text: report what the example
    # printed and whether its connection was closed by it.
    wrapped = (
        "import contextlib, io, json\n"
        "_out = io.StringIO()\n"
        "with contextlib.redirect_stdout(_out):\n"
        + "".join(f"    {line}\n" if line else "\n" for line in code.splitlines())
        + "json.dumps({'printed': _out.getvalue(), 'closed': conn.is_closed()})"
    )
    result = await loaded_page.python(wrapped)
    if "print(" in code:
        assert result["printed"].strip()
    assert result["closed"] is ("conn.close()" in code)
