"""The fetch's row path offline, stage by stage: no server, no event loop, no socket.

    .venv/bin/python -m bench.rows_bench [--rows 200000] [--repeats 7] [--profile]

``bench/bulk_bench.py`` times a whole 200k-row fetch against asyncpg; this splits the
client's share of it into what can be changed one piece at a time. It writes the bulk
bench's rows (int4, text, float8, timestamptz, numeric, bool) as the DataRow bytes a UTC
server sends, cuts them in the 64 KiB reads the TCP transport makes, and times, in CPU
milliseconds (the best of ``--repeats``): framing (``ReceiveBuffer.read_data_rows``) and
decoding into Records (``query.decode``), each with the driver's C loops (driver/_speedups.c,
when built) and with its Python loops; then each column's decoder alone, and the Records
alone. ``--profile`` adds cProfile's view of the two stages. Asserts nothing but that
every row arrived.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import hashlib
import pstats
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from struct import Struct
from typing import Any

from driver import query, speedups
from driver.codecs import default_registry, oids
from driver.protocol.backend import Field
from driver.protocol.buffer import ReceiveBuffer
from driver.statement import Statement

COLUMNS = (("i", oids.INT4), ("t", oids.TEXT), ("f", oids.FLOAT8),
           ("ts", oids.TIMESTAMPTZ), ("n", oids.NUMERIC), ("b", oids.BOOL))  # fmt: skip
READ_SIZE = 64 * 1024  # driver/transport/tcp.py's recv_into() size
_LEN = Struct("!i")
Raw = list[tuple[bytes | None, ...]]


def values(i: int) -> list[bytes]:
    """Row ``i`` of bulk_bench's table, as the server prints it (TimeZone UTC)."""
    ts = datetime(2020, 1, 1) + timedelta(seconds=i * 1.5)
    return [
        b"%d" % i,
        b"row " + hashlib.md5(b"%d" % i).hexdigest().encode(),
        repr(i * 1.25).removesuffix(".0").encode(),
        ts.strftime("%Y-%m-%d %H:%M:%S").encode() + (b".5" if ts.microsecond else b"") + b"+00",
        b"%d.%02d" % divmod(i, 100),
        b"t" if i % 3 == 0 else b"f",
    ]


def data_row(row: list[bytes]) -> bytes:
    body = len(row).to_bytes(2, "big") + b"".join(_LEN.pack(len(v)) + v for v in row)
    return b"D" + (len(body) + 4).to_bytes(4, "big") + body


def best(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """The least CPU time of ``repeats`` calls (ms), and the last call's result."""
    times, result = [], None
    for _ in range(repeats):
        result = None  # let the previous result go before timing the next
        cpu0 = time.process_time()
        result = fn()
        times.append((time.process_time() - cpu0) * 1e3)
    return min(times), result


def _decode_all(decode: Callable[[bytes], Any], column: tuple[bytes, ...]) -> list[Any]:
    return list(map(decode, column))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--profile", action="store_true", help="cProfile the two stages")
    args = ap.parse_args()
    wire = b"".join(data_row(values(i)) for i in range(1, args.rows + 1))
    chunks = [wire[k : k + READ_SIZE] for k in range(0, len(wire), READ_SIZE)]
    stmt = Statement("bench", "", ())
    fields = tuple(Field(name, 0, 0, oid, 0, 0, 0) for name, oid in COLUMNS)
    stmt.set_fields(fields, default_registry.copy().decoder)
    cls = stmt.record_cls
    assert cls is not None

    def frame() -> Raw:
        buf = ReceiveBuffer()
        rows: Raw = []
        for chunk in chunks:
            buf.feed(chunk)
            buf.read_data_rows(rows)
        if len(rows) != args.rows:
            raise AssertionError(f"{len(rows)} rows framed, {args.rows} sent")
        return rows

    print(f"{args.rows} rows in {len(chunks)} reads, CPU ms, best of {args.repeats} "
          f"(Python {sys.version.split()[0]})")  # fmt: skip
    c_loops = speedups.read_rows, speedups.decode_rows
    forms = [("C loops", c_loops), ("Python loops", (None, None))]
    if None in c_loops:
        print("  (driver/_speedups.c is not built or PGWS_PURE_PYTHON is set: Python loops only)")
        forms = forms[1:]
    raw: Raw = []
    print(f"  {'':14}{'framing':>9}{'decoding':>9}{'total':>9}")
    for label, (read_rows, decode_rows) in forms:
        speedups.read_rows, speedups.decode_rows = read_rows, decode_rows
        framing, raw = best(frame, args.repeats)
        decoding, _ = best(partial(query.decode, stmt, raw), args.repeats)
        print(f"  {label:14}{framing:9.1f}{decoding:9.1f}{framing + decoding:9.1f}")
    speedups.read_rows, speedups.decode_rows = c_loops
    columns = list(zip(*raw, strict=True))
    for (name, _oid), decode, column in zip(COLUMNS, stmt.decoders, columns, strict=True):
        took, _ = best(partial(_decode_all, decode, column), args.repeats)
        print(f"    decoder {name:<3}{took:8.1f}")
    rows = [tuple(row) for row in zip(*columns, strict=True)]
    took, _ = best(lambda: list(map(cls, rows)), args.repeats)
    print(f"    records   {took:8.1f}")
    gc.disable()  # the collector's share: it walks every Record made so far, again and again
    took, _ = best(lambda: list(map(cls, rows)), args.repeats)
    gc.enable()
    print(f"    records   {took:8.1f}  (collector off)")
    if args.profile:
        for label, fn in (("framing", frame), ("decoding", lambda: query.decode(stmt, raw))):
            prof = cProfile.Profile()
            prof.runcall(fn)
            print(f"\nprofile: {label}")
            pstats.Stats(prof, stream=sys.stdout).sort_stats("tottime").print_stats(8)


if __name__ == "__main__":
    main()
