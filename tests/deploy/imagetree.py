"""The image's file tree and virtualenv, built without Docker from the Dockerfile itself.

A clone of the repository is filtered by .dockerignore (Docker's rules: `**`, `*`, `?`, `!`
exceptions, the last matching line wins, a path is excluded with its parent), then the final
stage's COPY lines are replayed from that context; the `npm` stage's outputs come from the
node_modules that bootstrap installed from the same lock files (checked equal); the `deps`
stage's RUN line is run for real against a fresh virtualenv.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Stage:
    name: str
    base: str
    lines: list[str] = field(default_factory=list)


def instructions(dockerfile: str) -> list[Stage]:
    """The stages and their instructions, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", dockerfile)
    stages: list[Stage] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("FROM "):
            parts = line.split()
            stages.append(Stage(parts[3] if len(parts) > 3 else str(len(stages)), parts[1]))
        else:
            stages[-1].lines.append(line)
    return stages


def json_arg(line: str) -> list[str]:
    """The exec-form argument of CMD / HEALTHCHECK ... CMD."""
    args = line.split(" ", 1)[1]
    if line.startswith("HEALTHCHECK"):
        args = args.split(" CMD ", 1)[1]
    parsed: list[str] = json.loads(args)
    return parsed


def _pattern(p: str) -> re.Pattern[str]:
    out = ""
    i = 0
    while i < len(p):
        if p.startswith("**", i):
            out += ".*"
            i += 2
            if p.startswith("/", i):
                out = out[:-2] + "(?:.*/)?"
                i += 1
        elif p[i] == "*":
            out += "[^/]*"
            i += 1
        elif p[i] == "?":
            out += "[^/]"
            i += 1
        else:
            out += re.escape(p[i])
            i += 1
    return re.compile(out)


def ignore_rules(text: str) -> list[tuple[bool, re.Pattern[str]]]:
    rules = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        keep = line.startswith("!")
        rules.append((keep, _pattern(line.lstrip("!").strip("/"))))
    return rules


def excluded(path: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents decides."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    verdict = False
    for keep, pat in rules:
        if any(pat.fullmatch(p) for p in prefixes):
            verdict = not keep
    return verdict


def build_context(clone: Path, dest: Path) -> list[str]:
    """Copy the files of `clone` that .dockerignore lets through; returns their paths."""
    rules = ignore_rules((clone / ".dockerignore").read_text())
    files = subprocess.run(["git", "ls-files"], cwd=clone, capture_output=True, text=True,
                           check=True).stdout.split()
    kept = [f for f in files if not excluded(f, rules)]
    for f in kept:
        (dest / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(clone / f, dest / f)
    return kept


@dataclass
class Image:
    tree: Path  # the final stage's WORKDIR
    venv: Path  # /opt/venv
    env: dict[str, str]
    cmd: list[str]
    healthcheck: list[str]
    context: list[str]


def build_image(work: Path) -> Image:
    """Clone, filter, replay the Dockerfile; raises if any step fails."""
    clone = work / "clone"
    subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(ROOT), str(clone)],
                   check=True, timeout=120)
    context = work / "context"
    kept = build_context(clone, context)
    stages = {s.name: s for s in instructions((context / "Dockerfile").read_text()
                                              if (context / "Dockerfile").exists()
                                              else (clone / "Dockerfile").read_text())}
    venv = work / "opt" / "venv"
    tree = work / "srv"
    tree.mkdir()
    # deps stage: its COPY of the lock file, then its RUN line, with the venv at our path
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    build = work / "build"
    build.mkdir()
    for line in stages["deps"].lines:
        if line.startswith("COPY "):
            src, dst = line.split()[1:3]
            shutil.copy2(context / src, build / Path(dst).name)
        elif line.startswith("RUN pip install"):
            argv = shlex.split(line[4:].replace("/build/", f"{build}/"))
            subprocess.run([str(venv / "bin" / "python"), "-m", *argv], check=True, timeout=600,
                           capture_output=True)
    env: dict[str, str] = {}
    cmd: list[str] = []
    health: list[str] = []
    for line in stages["runtime"].lines:
        if line.startswith("ENV "):
            for key, value in re.findall(r"(\w+)=(\S+)", line):
                env[key] = value.replace("$PATH", "").replace("/opt/venv", str(venv))
        elif line.startswith("COPY --from=npm "):
            src, dst = line.split()[2:4]
            rel = src.removeprefix("/build/")
            lock = Path(rel.split("/node_modules/")[0]) / "package-lock.json"
            assert (clone / lock).read_bytes() == (ROOT / lock).read_bytes(), lock
            target = tree / dst
            target.parent.mkdir(parents=True, exist_ok=True)
            copy = shutil.copytree if (ROOT / rel).is_dir() else shutil.copy2
            copy(ROOT / rel, target)
        elif line.startswith("COPY --from=deps "):
            continue  # the venv above
        elif line.startswith("COPY "):
            src, dst = line.split()[1:3]
            shutil.copytree(context / src, tree / dst, dirs_exist_ok=True)
        elif line.startswith("CMD "):
            cmd = json_arg(line)
        elif line.startswith("HEALTHCHECK "):
            health = json_arg(line)
    return Image(tree, venv, env, cmd, health, kept)
