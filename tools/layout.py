"""`python -m tools.layout [--write]`: the layout map of ARCHITECTURE.md, from the modules'
own docstrings (every module of driver/, proxy/ and app/, with the first paragraph of its
docstring); --write puts it between the file's markers, without it the map is printed.

tests/test_layout.py fails when the map in the file is not the one this builds.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("driver", "proxy", "app")
MAP_FILE = ROOT / "ARCHITECTURE.md"
BEGIN = "<!-- layout:begin (python -m tools.layout --write) -->"
END = "<!-- layout:end -->"


def modules() -> list[Path]:
    """Every Python module of the mapped packages, relative to the repository root."""
    found = [
        p.relative_to(ROOT)
        for package in PACKAGES
        for p in (ROOT / package).rglob("*.py")
        if "__pycache__" not in p.parts
    ]
    return sorted(
        found,
        key=lambda p: (PACKAGES.index(p.parts[0]), p.parent.parts, p.name != "__init__.py", p.name),
    )


def summary(path: Path) -> str:
    """The first paragraph of the module's docstring, on one line ("" without one)."""
    doc = ast.get_docstring(ast.parse((ROOT / path).read_text(encoding="utf-8")))
    return " ".join(doc.split("\n\n")[0].split()) if doc else ""


def build() -> str:
    lines = []
    for path in modules():
        text = summary(path) or "(no docstring)"
        lines.append(f"- `{path.as_posix()}`: {text}")
    return "\n".join(lines)


def section(text: str) -> str:
    """What stands between the markers of ``text``."""
    start = text.index(BEGIN) + len(BEGIN)
    return text[start : text.index(END, start)].strip("\n")


def main(argv: list[str]) -> int:
    generated = build()
    if "--write" not in argv:
        print(generated)
        return 0
    text = MAP_FILE.read_text(encoding="utf-8")
    start = text.index(BEGIN) + len(BEGIN)
    end = text.index(END, start)
    MAP_FILE.write_text(text[:start] + "\n" + generated + "\n" + text[end:], encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
