"""Text-format codecs for date, time, timetz, timestamp, timestamptz and interval.

Assumes the session defaults DateStyle 'ISO' and IntervalStyle 'postgres' (see "Date/Time Output"
in the PostgreSQL docs). The fast path is the stdlib's C fromisoformat(); the rare values it
rejects (infinities, BC, years past 9999, '24:00:00') take a slow path that matches asyncpg:
infinities become the min/max of the Python type, unrepresentable values raise CodecError.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TypeVar

from .arrays import CodecError

_UTC = UTC
_T = TypeVar("_T")
_MAX_UTC = datetime.max.replace(tzinfo=_UTC)
_MIN_UTC = datetime.min.replace(tzinfo=_UTC)
# Only a datetime in these years can equal datetime.max or min, naive or as a UTC instant
# (a UTC offset is less than a day).
_EDGE_YEARS = frozenset({datetime.min.year, datetime.max.year})
_date_fromiso = date.fromisoformat
_datetime_fromiso = datetime.fromisoformat
_time_fromiso = time.fromisoformat

# -- decoders ---------------------------------------------------------------------------------


def decode_date(data: bytes) -> date:
    try:
        return _date_fromiso(data.decode("ascii"))
    except ValueError:
        return _special(data, date.max, date.min, "date")


def decode_timestamp(data: bytes) -> datetime:
    try:
        return _datetime_fromiso(data.decode("ascii"))
    except ValueError:
        return _special(data, datetime.max, datetime.min, "timestamp")


def decode_timestamptz(data: bytes) -> datetime:
    """An aware datetime in UTC, as asyncpg returns it whatever the session's TimeZone.

    The infinities come back as naive datetime.max/min, again as asyncpg does. A session in
    UTC prints "+00", which fromisoformat() already reads as the ``UTC`` singleton: skipping
    astimezone() then saves a third of the call.
    """
    try:
        value = _datetime_fromiso(data.decode("ascii"))
        return value if value.tzinfo is _UTC else value.astimezone(_UTC)
    except (ValueError, OverflowError):
        return _special(data, datetime.max, datetime.min, "timestamptz")


def decode_time(data: bytes) -> time:
    try:
        return _time_fromiso(data.decode("ascii"))
    except ValueError:
        return _special(data, None, None, "time")


decode_timetz = decode_time  # fromisoformat keeps the offset, seconds included


_BIG_YEAR = re.compile(r"\d{5,}-")


def _special(data: bytes, plus: _T | None, minus: _T | None, kind: str) -> _T:
    if data == b"infinity" and plus is not None:
        return plus
    if data == b"-infinity" and minus is not None:
        return minus
    text = data.decode("ascii", "replace")
    if text.endswith(" BC"):
        why = "Python's datetime types have no years before 1 AD"
    elif kind.startswith("time") and text.startswith("24:"):
        why = "datetime.time stops at 23:59:59.999999"
    elif _BIG_YEAR.match(text):
        why = "it is outside the range of Python's datetime types (years 1-9999)"
    else:
        why = "expected DateStyle 'ISO' output (the driver sets it at connect)"
    raise CodecError(f"cannot decode {kind} {text!r}: {why}")


# "1 year 2 mons -3 days +04:05:06.789": each part optional, zero is "00:00:00"
_INTERVAL = re.compile(
    rb"(?:([+-]?\d+) years? ?)?(?:([+-]?\d+) mons? ?)?(?:([+-]?\d+) days? ?)?"
    rb"(?:([+-])?(\d+):(\d\d):(\d\d)(?:\.(\d{1,6}))?)?"
)


def decode_interval(data: bytes) -> timedelta:
    """Like asyncpg, a month counts 30 days and a year 365 days.

    The server prints years and months as the C quotient and remainder of the month count, which
    is exactly how asyncpg splits it, so the totals agree for negative intervals too.

    Raises:
        CodecError: the text is not IntervalStyle 'postgres', or the interval exceeds
            timedelta's range (999999999 days).
    """
    m = _INTERVAL.fullmatch(data)
    if m is None or not data:
        raise CodecError(f"cannot decode interval {data!r}: expected IntervalStyle 'postgres'")
    years, months, days, sign, hours, minutes, seconds, fraction = m.groups()
    total_days = int(days or 0) + 30 * int(months or 0) + 365 * int(years or 0)
    micro = 0
    if hours is not None:
        micro = (int(hours) * 3600 + int(minutes) * 60 + int(seconds)) * 1_000_000
        if fraction:
            micro += int(fraction.ljust(6, b"0"))
        if sign == b"-":
            micro = -micro
    try:
        return timedelta(days=total_days, microseconds=micro)
    except OverflowError as exc:
        raise CodecError(f"cannot decode interval {data.decode()!r}: beyond timedelta") from exc


# -- encoders ---------------------------------------------------------------------------------


def encode_date(value: Any) -> str:
    """date.max/min are sent as 'infinity'/'-infinity', the inverse of decoding."""
    if not isinstance(value, date):
        raise TypeError(f"expected a datetime.date instance, got {type(value).__name__!r}")
    if type(value) is date:
        if value == date.max:
            return "infinity"
        if value == date.min:
            return "-infinity"
    return str(value.isoformat())


def encode_timestamp(value: Any) -> str:
    """For timestamp and timestamptz.

    datetime.max/min, naive or UTC, are sent as 'infinity'/'-infinity', as asyncpg sends them.
    The server reads a naive value for timestamptz in the session's TimeZone, and ignores the
    offset of an aware value sent to a timestamp parameter.
    """
    if isinstance(value, datetime):
        if value.year in _EDGE_YEARS:  # else it cannot be max or min: no comparisons
            if value.tzinfo is None:
                if value == datetime.max:
                    return "infinity"
                if value == datetime.min:
                    return "-infinity"
            elif value == _MAX_UTC:
                return "infinity"
            elif value == _MIN_UTC:
                return "-infinity"
        return value.isoformat(" ")
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(
        f"expected a datetime.date or datetime.datetime instance, got {type(value).__name__!r}"
    )


def encode_time(value: Any) -> str:
    """For time and timetz; an aware time carries its offset, seconds included."""
    if not isinstance(value, time):
        raise TypeError(f"expected a datetime.time instance, got {type(value).__name__!r}")
    return value.isoformat()


def encode_interval(value: Any) -> str:
    """Days and an explicitly signed time part, so no IntervalStyle can spread a sign across
    fields: timedelta(seconds=-1) is '-1 days +23:59:59'."""
    if not isinstance(value, timedelta):
        raise TypeError(f"expected a datetime.timedelta instance, got {type(value).__name__!r}")
    minutes, secs = divmod(value.seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{value.days} days +{hours:02}:{minutes:02}:{secs:02}.{value.microseconds:06}"
