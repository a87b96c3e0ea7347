"""ServerVersion: the server's version as asyncpg's named tuple, parsed from ``server_version``.

``Connection.get_server_version()`` answers from the ParameterStatus the server sent at
start-up, so asking costs no round trip. Since PostgreSQL 10 a version has two numbers
("15.4"); like asyncpg, it is read as ``(15, 0, 4)``, so that the common check
``version[:2] >= (15, 0)`` does not fail on a bug-fix release.
"""

from __future__ import annotations

import re
from typing import NamedTuple

__all__ = ["ServerVersion", "parse_server_version"]


class ServerVersion(NamedTuple):
    """asyncpg's ``ServerVersion``, shaped like ``sys.version_info``."""

    major: int
    minor: int
    micro: int
    releaselevel: str
    serial: int


# "15.4", "15.4 (Debian 15.4-1.pgdg120+1)", "9.6.24", "17beta2", "16rc1", "10devel",
# "PostgreSQL 15.4 on ..." (the long form of version())
_VERSION = re.compile(
    r"(?:Postgre\S*\s+)?(?P<major>\d+)(?:\.(?P<minor>\d+))?(?:\.(?P<micro>\d+))?"
    r"(?P<level>[a-z]+)?(?P<serial>\d+)?"
)


def parse_server_version(text: str) -> ServerVersion:
    """The ServerVersion of a ``server_version`` string.

    Raises:
        ValueError: no version number in ``text``.
    """
    found = _VERSION.search(text)
    if found is None:
        raise ValueError(f"cannot parse a PostgreSQL version from {text!r}")
    major = int(found["major"])
    first = int(found["minor"] or 0)
    second = int(found["micro"] or 0)
    level = found["level"] or "final"
    serial = int(found["serial"] or 0)
    if major >= 10:  # two-part versions: the second number is the bug-fix release
        return ServerVersion(major, 0, first, level, serial)
    return ServerVersion(major, first, second, level, serial)
