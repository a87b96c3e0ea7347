"""asyncpg's ``format='tuple'`` for built-in types: a value as the tuple of integers its
binary form holds (``set_type_codec(..., format='tuple')``), converted here from and to the
text format this driver speaks.

date: ``(days since 2000-01-01,)``; time: ``(microseconds,)``; timetz: ``(microseconds,
seconds west of UTC)``; timestamp and timestamptz: ``(microseconds since 2000-01-01 UTC,)``;
interval: ``(months, days, microseconds)``. Infinities are the extreme values of the binary
field (``2**31 - 1`` days, ``2**63 - 1`` microseconds and their negatives), as asyncpg.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from . import datetimes as dt
from . import oids
from .arrays import CodecError

__all__ = ["TUPLE_CODECS"]

_EPOCH = datetime(2000, 1, 1)
_DATE_EPOCH = date(2000, 1, 1)
_INT4_MAX, _INT8_MAX = 2**31 - 1, 2**63 - 1
_US = timedelta(microseconds=1)


def _micros(delta: timedelta) -> int:
    return delta // _US


def _date_in(data: bytes) -> tuple[int]:
    text = data.decode()
    if text in ("infinity", "-infinity"):
        return (_INT4_MAX if text[0] != "-" else -_INT4_MAX - 1,)
    return ((dt.decode_date(data) - _DATE_EPOCH).days,)


def _date_out(value: Any) -> str:
    (days,) = value
    if days >= _INT4_MAX:
        return "infinity"
    if days <= -_INT4_MAX - 1:
        return "-infinity"
    return (_DATE_EPOCH + timedelta(days=days)).isoformat()


def _time_in(data: bytes) -> tuple[int]:
    t = dt.decode_time(data)
    return (((t.hour * 60 + t.minute) * 60 + t.second) * 1_000_000 + t.microsecond,)


def _time_text(micros: int) -> str:
    seconds, us = divmod(micros, 1_000_000)
    minutes, s = divmod(seconds, 60)
    h, m = divmod(minutes, 60)
    return f"{h:02d}:{m:02d}:{s:02d}.{us:06d}"


def _time_out(value: Any) -> str:
    return _time_text(value[0])


def _timetz_in(data: bytes) -> tuple[int, int]:
    t = dt.decode_timetz(data)
    offset = t.utcoffset() or timedelta()
    micros = ((t.hour * 60 + t.minute) * 60 + t.second) * 1_000_000 + t.microsecond
    return micros, -int(offset.total_seconds())


def _timetz_out(value: Any) -> str:
    micros, west = value
    sign = "-" if west > 0 else "+"
    hours, rest = divmod(abs(west), 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{_time_text(micros)}{sign}{hours:02d}:{minutes:02d}:{seconds:02d}"


def _stamp_in(data: bytes) -> tuple[int]:
    text = data.decode()
    if text in ("infinity", "-infinity"):
        return (_INT8_MAX if text[0] != "-" else -_INT8_MAX - 1,)
    value = dt.decode_timestamptz(data) if text[-3:-2] in "+-" else dt.decode_timestamp(data)
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return (_micros(value - _EPOCH),)


def _stamp_out(utc: bool) -> Callable[[Any], str]:
    def encode(value: Any) -> str:
        (micros,) = value
        if micros >= _INT8_MAX:
            return "infinity"
        if micros <= -_INT8_MAX - 1:
            return "-infinity"
        text = (_EPOCH + timedelta(microseconds=micros)).isoformat(" ")
        return text + "+00" if utc else text

    return encode


_INTERVAL = re.compile(
    r"^(?:([-+]?\d+) years? ?)?(?:([-+]?\d+) mons? ?)?(?:([-+]?\d+) days? ?)?"
    r"(?:([-+])?(\d+):(\d\d):(\d\d)(?:\.(\d{1,6}))?)?$"
)


def _interval_in(data: bytes) -> tuple[int, int, int]:
    """IntervalStyle 'postgres' (the server's default): '1 year 2 mons 3 days 04:05:06.7'."""
    match = _INTERVAL.match(data.decode())
    if match is None:
        raise CodecError(f"cannot read interval {data!r} (IntervalStyle must be 'postgres')")
    years, months, days, sign, h, m, s, frac = match.groups()
    micros = 0
    if h is not None:
        micros = ((int(h) * 60 + int(m)) * 60 + int(s)) * 1_000_000 + int(
            (frac or "").ljust(6, "0")
        )
        if sign == "-":
            micros = -micros
    return int(years or 0) * 12 + int(months or 0), int(days or 0), micros


def _interval_out(value: Any) -> str:
    months, days, micros = value
    return f"{months} months {days} days {micros} microseconds"


# OID -> (text -> tuple, tuple -> text)
TUPLE_CODECS: dict[int, tuple[Callable[[bytes], Any], Callable[[Any], str]]] = {
    oids.DATE: (_date_in, _date_out),
    oids.TIME: (_time_in, _time_out),
    oids.TIMETZ: (_timetz_in, _timetz_out),
    oids.TIMESTAMP: (_stamp_in, _stamp_out(False)),
    oids.TIMESTAMPTZ: (_stamp_in, _stamp_out(True)),
    oids.INTERVAL: (_interval_in, _interval_out),
}
