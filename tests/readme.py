"""The Python examples of the READMEs, extracted at test time (never copied into a test).

Examples are written against `make demo` as it prints itself: Postgres on 127.0.0.1:5433, the
proxy on 127.0.0.1:9876, the app on 127.0.0.1:8000. `for_ports()` replaces those default port
numbers with the ports a test's own demo got; nothing else in an example is changed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
READMES = (ROOT / "README.md", ROOT / "web" / "pyodide" / "README.md")
DEMO_DEFAULTS = {"pg": 5433, "proxy": 9876, "app": 8000}
_FENCE = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


@dataclass(frozen=True)
class Snippet:
    path: Path
    line: int
    heading: str
    code: str

    @property
    def pyodide(self) -> bool:
        """Runs in the browser: the Pyodide README, or a README section about Pyodide."""
        return self.path.parent.name == "pyodide" or "pyodide" in self.heading.lower()

    @property
    def name(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    def for_ports(self, pg: int, proxy: int, app: int = DEMO_DEFAULTS["app"]) -> str:
        code = self.code
        for default, live in zip(DEMO_DEFAULTS.values(), (pg, proxy, app), strict=True):
            code = code.replace(f"127.0.0.1:{default}", f"127.0.0.1:{live}")
        return code


def snippets() -> list[Snippet]:
    found = []
    for path in READMES:
        text = path.read_text(encoding="utf-8")
        for m in _FENCE.finditer(text):
            before = text[: m.start()]
            headings = re.findall(r"^#+ (.*)$", before, re.M)
            found.append(
                Snippet(path, before.count("\n") + 1, headings[-1] if headings else "", m[1])
            )
    return found
