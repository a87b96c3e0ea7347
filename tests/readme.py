"""The Python examples of the READMEs, extracted at test time (never copied into a test).

Examples are written against `make demo` as it prints itself: Postgres on 127.0.0.1:5433, the
proxy on 127.0.0.1:9876 (WebSocket) and 127.0.0.1:9877 (SQL over HTTP), the app on
127.0.0.1:8000. `for_ports()` replaces those default port numbers with the ports a test's own demo
got; nothing else in an example is changed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
READMES = (ROOT / "README.md", ROOT / "web" / "pyodide" / "README.md")
DEMO_DEFAULTS = {"pg": 5433, "proxy": 9876, "sql": 9877, "app": 8000}
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

    def for_ports(
        self,
        pg: int,
        proxy: int,
        app: int = DEMO_DEFAULTS["app"],
        sql: int = DEMO_DEFAULTS["sql"],
    ) -> str:
        """The example with each demo default `127.0.0.1:PORT` replaced by the live port, in one
        pass (a live port equal to another default is not replaced again)."""
        given = {"pg": pg, "proxy": proxy, "sql": sql, "app": app}
        live = {DEMO_DEFAULTS[name]: port for name, port in given.items()}
        pattern = "|".join(str(p) for p in live)
        return re.sub(
            rf"127\.0\.0\.1:({pattern})\b", lambda m: f"127.0.0.1:{live[int(m[1])]}", self.code
        )


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
