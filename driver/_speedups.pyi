"""Types of driver/_speedups.c (an optional build: see driver/speedups.py)."""

from typing import Any

def read_rows(buf: bytes, pos: int, rows: list[tuple[bytes | None, ...]]) -> int: ...
def decode_rows(
    raw: list[tuple[bytes | None, ...]], cls: type[Any], decoders: tuple[Any, ...]
) -> list[Any]: ...
def bind_row(
    fixed: int, head: bytes, tail: bytes, encoders: tuple[Any, ...], row: Any
) -> bytes: ...
