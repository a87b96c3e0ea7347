"""ARCHITECTURE.md's layout map lists every module of driver/, proxy/ and app/, each with its
docstring's first paragraph, and nothing that does not exist."""

from __future__ import annotations

import re

from tools import layout


def _listed() -> dict[str, str]:
    text = layout.section(layout.MAP_FILE.read_text(encoding="utf-8"))
    entries = re.findall(r"^- `([^`]+)`: (.*)$", text, flags=re.MULTILINE)
    assert len(entries) == len(text.splitlines()), "a line of the map is not `- `path`: text`"
    return dict(entries)


def test_every_module_is_listed_and_every_listed_module_exists() -> None:
    listed = set(_listed())
    on_disk = {p.as_posix() for p in layout.modules()}
    assert on_disk - listed == set(), "not in ARCHITECTURE.md: python -m tools.layout --write"
    assert listed - on_disk == set(), "listed in ARCHITECTURE.md but gone"
    assert {"driver/session.py", "proxy/relay.py", "app/main.py"} <= listed


def test_each_line_is_the_modules_docstring() -> None:
    for path, text in _listed().items():
        expected = layout.summary(layout.ROOT / path) or "(no docstring)"
        assert text == expected, f"{path}: the map says {text!r}, the module {expected!r}"


def test_driver_and_proxy_modules_say_what_they_own() -> None:
    for path in layout.modules():
        if path.parts[0] in ("driver", "proxy"):
            assert layout.summary(path), f"{path} has no docstring"
