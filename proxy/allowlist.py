"""A static look at ALLOW_ADDR_REGEX: can it ever match a `host:port`?

The regex must match the whole target, so `db\\.internal` (no port) refuses every client with a
403 that looks like a client error. Every target contains a ':' and ends with a digit; a
pattern that can consume no ':' or cannot end on a digit can never match one. The check walks
the parsed pattern (the standard library's own parser) and answers "maybe" for anything it does
not model, so it never warns about a regex that could match.
"""

from __future__ import annotations

import importlib
import re
from typing import Any

# The parser behind re.compile (private, typed loosely): if a later Python moves it, the check
# answers "maybe" and the warning is simply not given.
_p: Any
_c: Any
try:
    _p = importlib.import_module("re._parser")
    _c = importlib.import_module("re._constants")
except ImportError:  # pragma: no cover
    _p = _c = None

_DIGITS = frozenset("0123456789")
_ALL = _DIGITS | {":"}  # the only characters this check needs to follow

_CATEGORIES: dict[Any, frozenset[str]] = {}
if _c is not None:
    _CATEGORIES = {
        _c.CATEGORY_DIGIT: _DIGITS,
        _c.CATEGORY_NOT_DIGIT: frozenset(":"),
        _c.CATEGORY_WORD: _DIGITS,
        _c.CATEGORY_NOT_WORD: frozenset(":"),
        _c.CATEGORY_SPACE: frozenset(),
        _c.CATEGORY_NOT_SPACE: _ALL,
    }


class _Unknown(Exception):
    """A construct the walk does not model: assume the regex may match."""


def _one(op: Any, av: Any) -> frozenset[str]:
    """Characters of _ALL a single-character item can consume."""
    if op is _c.LITERAL:
        return frozenset(chr(av)) & _ALL
    if op is _c.NOT_LITERAL:
        return _ALL - {chr(av)}
    if op is _c.ANY:
        return _ALL
    if op is _c.IN:
        found: set[str] = set()
        negate = False
        for sub_op, sub_av in av:
            if sub_op is _c.NEGATE:
                negate = True
            elif sub_op is _c.LITERAL:
                found |= {chr(sub_av)} & _ALL
            elif sub_op is _c.RANGE:
                found |= {ch for ch in _ALL if sub_av[0] <= ord(ch) <= sub_av[1]}
            elif sub_op is _c.CATEGORY and sub_av in _CATEGORIES:
                found |= _CATEGORIES[sub_av]
            else:
                raise _Unknown
        return _ALL - found if negate else frozenset(found)
    raise _Unknown


def _walk(seq: Any) -> tuple[frozenset[str], frozenset[str], bool]:
    """(characters consumed anywhere, characters possible last, whether it can be empty)."""
    anywhere: frozenset[str] = frozenset()
    last: frozenset[str] = frozenset()
    empty = True
    for op, av in seq:
        if op in (_c.LITERAL, _c.NOT_LITERAL, _c.ANY, _c.IN):
            chars = _one(op, av)
            a, lst, e = chars, chars, False
        elif op in (_c.MAX_REPEAT, _c.MIN_REPEAT, getattr(_c, "POSSESSIVE_REPEAT", None)):
            lo, hi, sub = av
            a, lst, e = _walk(sub)
            if hi == 0:
                a, lst, e = frozenset(), frozenset(), True
            e = e or lo == 0
        elif op is _c.SUBPATTERN:
            a, lst, e = _walk(av[3])
        elif op is getattr(_c, "ATOMIC_GROUP", None):
            a, lst, e = _walk(av)
        elif op is _c.BRANCH:
            parts = [_walk(branch) for branch in av[1]]
            a = frozenset().union(*(p[0] for p in parts))
            lst = frozenset().union(*(p[1] for p in parts))
            e = any(p[2] for p in parts)
        elif op in (_c.AT, _c.ASSERT, _c.ASSERT_NOT):
            continue  # consumes nothing (an assertion can only narrow what matches)
        else:
            raise _Unknown
        anywhere |= a
        last = lst | last if e else lst
        empty = empty and e
    return anywhere, last, empty


def never_matches_host_port(regex: re.Pattern[str]) -> str | None:
    """Why `regex` can never fullmatch a `host:port`, or None when it might."""
    if _p is None:
        return None
    try:
        anywhere, last, _empty = _walk(_p.parse(regex.pattern, regex.flags))
    except (_Unknown, Exception):
        return None
    if ":" not in anywhere:
        return "it can match no ':' (a target is host:port; add the port, e.g. ':5432')"
    if not last & _DIGITS:
        return "it cannot end with a digit (a target ends with its port, e.g. ':5432')"
    return None
