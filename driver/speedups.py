"""The row path's optional C loops (driver/_speedups.c), or None where they are not built.

The Python loops they replace (``_rows`` in driver/protocol/buffer.py, ``decode`` and
executemany()'s ``_flights`` in driver/query.py) stay the reference and run where the C ones
are absent: on Pyodide, on a machine without a compiler, or when the environment variable
``PGWS_PURE_PYTHON`` is set to anything but "" or "0" at import (the suite uses it to run both
forms). Fetching 200k rows costs about half the CPU with them (bench/rows_bench.py,
bench/bulk_bench.py).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

__all__ = ["bind_row", "decode_rows", "read_rows"]

RawRows = list[tuple[bytes | None, ...]]
read_rows: Callable[[bytes, int, RawRows], int] | None = None
decode_rows: Callable[[RawRows, type[Any], tuple[Any, ...]], list[Any]] | None = None
bind_row: Callable[[int, bytes, bytes, tuple[Any, ...], Any], bytes] | None = None

if os.environ.get("PGWS_PURE_PYTHON", "") in ("", "0"):
    try:
        from ._speedups import bind_row, decode_rows, read_rows
    except ImportError:  # not built here: the Python loops
        pass
