"""The image's file tree and virtualenv, built without Docker from the Dockerfile itself.

A clone of the repository is filtered by .dockerignore (Docker's rules: `**`, `*`, `?`, `!`
exceptions, the last matching line wins, a path is excluded with its parent), then every stage
is replayed in order:

* the node stage (`npm`) is not run: each `npm ci --prefix P` is checked against the
  node_modules that bootstrap installed from the same lock file (the lock equal to the clone's,
  the installed tree equal to the lock), and `COPY --from=npm` reads from those;
* the other stages are run: COPY from the context or an earlier stage (Docker's rules for
  directories, files, wildcards and a destination ending in `/`), WORKDIR, ENV, and RUN lines
  whose program is `python` or `pip`, run for real with the image's paths mapped into the work
  directory. `python` before a virtualenv is on PATH is this interpreter, standing in for the
  base image's;
* `RUN groupadd ... && useradd ...` is understood and not run (it writes only the image's
  /etc/passwd and /etc/group); USER must name the ids it creates.

Everything else (another instruction, a COPY flag such as --chown, a RUN with another program
or with shell syntax) raises UnsupportedLine while the plan is made, before anything runs: a
line the replay does not understand is refused, never skipped, so the tree the tests exercise
is the one Docker would build.

Stages on a Python base share one root here (the work directory), so the virtualenv has the
same absolute path in `deps` and in the runtime stage, as it has in the images (a virtualenv
cannot be moved). A `scratch` stage gets a root of its own.
"""

from __future__ import annotations

import glob
import json
import os
import posixpath
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# The base image's PATH is not replayed: the host's tools stand in for it.
BASE_PATH = "/usr/bin:/bin"
_WILDCARD = re.compile(r"[*?\[]")
_SHELL = re.compile(r"[;|&<>`$(){}\\\n]")
NPM_CI_FLAGS = re.compile(r"--no-audit|--no-fund|--loglevel=\w+")


class UnsupportedLine(ValueError):
    """A Dockerfile line the replay does not understand (and so would not build faithfully)."""

    def __init__(self, stage: str, line: str, why: str) -> None:
        super().__init__(f"stage {stage}: {why}: {line!r}")


class ReplayError(RuntimeError):
    """A step that would fail the Docker build too: a missing source, a failing RUN."""


@dataclass(frozen=True)
class Workdir:
    path: str


@dataclass(frozen=True)
class Env:
    pairs: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Copy:
    sources: tuple[str, ...]
    dest: str
    source_stage: str | None  # --from=; None: the build context


@dataclass(frozen=True)
class Run:
    argv: tuple[str, ...]


@dataclass(frozen=True)
class NpmCi:
    prefixes: tuple[str, ...]


@dataclass(frozen=True)
class AddUser:
    uid: str
    gid: str


@dataclass(frozen=True)
class User:
    spec: str


@dataclass(frozen=True)
class Expose:
    port: str


@dataclass(frozen=True)
class Cmd:
    argv: tuple[str, ...]


@dataclass(frozen=True)
class Healthcheck:
    argv: tuple[str, ...]


Step = Workdir | Env | Copy | Run | NpmCi | AddUser | User | Expose | Cmd | Healthcheck


@dataclass
class Stage:
    name: str
    base: str
    lines: list[str] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)

    @property
    def kind(self) -> str:
        """node (checked, not run), python (run on the shared root) or scratch (own root)."""
        for prefix, kind in (("node:", "node"), ("python:", "python"), ("scratch", "scratch")):
            if self.base.startswith(prefix):
                return kind
        raise UnsupportedLine(self.name, f"FROM {self.base}", "no replay for this base image")


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


def _exec_form(stage: Stage, line: str) -> tuple[str, ...]:
    try:
        argv = json_arg(line)
    except (IndexError, json.JSONDecodeError):
        raise UnsupportedLine(stage.name, line, "only the exec form (a JSON list)") from None
    if not argv or not all(isinstance(a, str) for a in argv):
        raise UnsupportedLine(stage.name, line, "only the exec form (a JSON list)")
    return tuple(argv)


def _copy(stage: Stage, line: str, rest: str) -> Copy:
    if rest.startswith("["):
        raise UnsupportedLine(stage.name, line, "COPY's JSON form")
    words = rest.split()
    source_stage = None
    while words and words[0].startswith("--"):
        flag = words.pop(0)
        if not flag.startswith("--from="):
            raise UnsupportedLine(stage.name, line, f"COPY flag {flag.split('=')[0]}")
        source_stage = flag.removeprefix("--from=")
    if len(words) < 2 or "$" in rest:
        raise UnsupportedLine(stage.name, line, "COPY needs sources and a destination, no $VAR")
    sources, dest = tuple(words[:-1]), words[-1]
    if (len(sources) > 1 or any(_WILDCARD.search(s) for s in sources)) and not dest.endswith("/"):
        raise UnsupportedLine(stage.name, line, "several sources need a destination ending in /")
    return Copy(sources, dest, source_stage)


def _run(stage: Stage, line: str, rest: str) -> Step:
    if stage.kind == "node":
        prefixes = []
        for part in rest.split("&&"):
            argv = shlex.split(part)
            if (
                argv[:3] != ["npm", "ci", "--prefix"]
                or len(argv) < 4
                or not all(NPM_CI_FLAGS.fullmatch(a) for a in argv[4:])
            ):
                raise UnsupportedLine(stage.name, line, "the node stage runs `npm ci` only")
            prefixes.append(argv[3])
        return NpmCi(tuple(prefixes))
    if stage.kind != "python":
        raise UnsupportedLine(stage.name, line, "RUN in a scratch stage")
    parts = [shlex.split(p) for p in rest.split("&&")]
    if len(parts) == 2 and [p[0] for p in parts] == ["groupadd", "useradd"]:

        def option(argv: list[str], name: str) -> str:
            return argv[argv.index(name) + 1] if name in argv else ""

        group, user = parts
        gid = option(group, "--gid")
        if not gid.isdigit() or option(user, "--gid") not in (gid, group[-1]):
            raise UnsupportedLine(stage.name, line, "a user needs a numeric group of its own")
        return AddUser(option(user, "--uid"), gid)
    if _SHELL.search(rest):
        raise UnsupportedLine(stage.name, line, "shell syntax in RUN")
    argv = shlex.split(rest)
    if argv[0] not in ("python", "pip"):
        raise UnsupportedLine(stage.name, line, f"no replay for `{argv[0]}`")
    return Run(tuple(argv))


def plan(dockerfile: str) -> list[Stage]:
    """Every stage with its lines understood as steps; raises UnsupportedLine on any other."""
    stages = instructions(dockerfile)
    names: set[str] = set()
    for stage in stages:
        stage.kind  # noqa: B018 -- refuses a base image with no replay
        for line in stage.lines:
            instruction, _, rest = line.partition(" ")
            step: Step
            rest = rest.strip()
            if instruction == "WORKDIR" and "$" not in rest:
                step = Workdir(rest)
            elif instruction == "ENV":
                pairs = tuple(re.findall(r"(\w+)=(\S+)", rest))
                if " ".join(f"{k}={v}" for k, v in pairs) != " ".join(rest.split()) or any(
                    "$" in v.replace("$PATH", "") or ("$" in v and k != "PATH") for k, v in pairs
                ):
                    raise UnsupportedLine(stage.name, line, "ENV KEY=VALUE pairs only")
                step = Env(pairs)
            elif instruction == "COPY":
                step = _copy(stage, line, rest)
                if step.source_stage is not None and step.source_stage not in names:
                    raise UnsupportedLine(stage.name, line, "COPY --from a later or no stage")
            elif instruction == "RUN":
                step = _run(stage, line, rest)
            elif instruction == "USER":
                step = User(rest)
            elif instruction == "EXPOSE":
                step = Expose(rest)
            elif instruction == "CMD":
                step = Cmd(_exec_form(stage, line))
            elif instruction == "HEALTHCHECK":
                step = Healthcheck(_exec_form(stage, line))
            else:
                raise UnsupportedLine(stage.name, line, f"no replay for {instruction}")
            if stage.kind == "node" and not (
                isinstance(step, Workdir | NpmCi)
                or (isinstance(step, Copy) and step.source_stage is None)
            ):
                raise UnsupportedLine(stage.name, line, "the node stage is checked, not run")
            stage.steps.append(step)
        names.add(stage.name)
    return stages


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
    files = subprocess.run(
        ["git", "ls-files"], cwd=clone, capture_output=True, text=True, check=True
    ).stdout.split()
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
    user: str = ""


@dataclass
class _State:
    """One stage being replayed: where its `/` is, its WORKDIR and ENV (image paths)."""

    stage: Stage
    root: Path
    workdir: str = "/"
    env: dict[str, str] = field(default_factory=dict)
    npm_dirs: dict[str, Path] = field(default_factory=dict)  # /build/P -> ROOT/P
    copied: dict[str, str] = field(default_factory=dict)  # image path -> context path


class _Replay:
    def __init__(self, work: Path, clone: Path, context: Path) -> None:
        self.work, self.clone, self.context = work, clone, context
        self.states: dict[str, _State] = {}

    def host(self, state: _State, path: str) -> Path:
        """Where an absolute image path of this stage is on this machine."""
        path = posixpath.normpath(posixpath.join(state.workdir, path))
        if state.stage.kind == "node":
            for built, checkout in state.npm_dirs.items():
                if path.startswith(built + "/node_modules/"):
                    return checkout / posixpath.relpath(path, built)
            raise ReplayError(f"stage {state.stage.name}: {path} is no output of `npm ci`")
        return state.root / path.lstrip("/")

    def env(self, state: _State) -> dict[str, str]:
        """The stage's ENV with the image paths on PATH mapped here (the base's left out)."""
        env = dict(state.env)
        if "PATH" in env:
            env["PATH"] = ":".join(str(self.host(state, p)) for p in env["PATH"].split(":") if p)
        return env

    def npm_ci(self, state: _State, step: NpmCi) -> None:
        for prefix in step.prefixes:
            built = posixpath.normpath(posixpath.join(state.workdir, prefix))
            lock_in_context = state.copied.get(built + "/package-lock.json")
            if lock_in_context is None:
                raise ReplayError(f"npm ci --prefix {prefix}: no package-lock.json copied there")
            rel = Path(lock_in_context).parent
            lock = (self.clone / rel / "package-lock.json").read_bytes()
            if lock != (ROOT / rel / "package-lock.json").read_bytes():
                raise ReplayError(f"{rel}/package-lock.json differs from the checkout's")
            locked = {k: v for k, v in json.loads(lock)["packages"].items() if k}
            hidden = ROOT / rel / "node_modules" / ".package-lock.json"
            if not hidden.is_file() or json.loads(hidden.read_text())["packages"] != locked:
                raise ReplayError(
                    f"{rel}/node_modules is not what its lock file installs: "
                    "run scripts/bootstrap.sh"
                )
            state.npm_dirs[built] = ROOT / rel

    def copy(self, state: _State, step: Copy) -> None:
        dest = posixpath.join(state.workdir, step.dest)
        into = step.dest.endswith("/") or len(step.sources) > 1
        # the node stage's files are remembered, not copied: its npm ci is checked, not run
        target = self.host(state, dest) if state.stage.kind != "node" else Path()
        for source in step.sources:
            if step.source_stage is None:
                pattern = self.context / source.lstrip("/")
            else:
                pattern = self.host(self.states[step.source_stage], source)
            found = (
                [Path(p) for p in sorted(glob.glob(str(pattern)))]
                if _WILDCARD.search(source)
                else [pattern]
                if pattern.exists()
                else []
            )
            if not found:
                where = step.source_stage or "the context"
                raise ReplayError(f"COPY {source}: no such file in {where}")
            for src in found:
                if state.stage.kind == "node":
                    name = posixpath.join(dest, src.name) if into else dest
                    state.copied[posixpath.normpath(name)] = str(src.relative_to(self.context))
                elif src.is_dir():
                    if src.resolve() != target.resolve():  # deps' venv is already in place
                        shutil.copytree(src, target, symlinks=True, dirs_exist_ok=True)
                elif into:
                    target.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(src, target / src.name)
                else:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(src, target)

    def run(self, state: _State, step: Run) -> None:
        env = self.env(state)
        path = (env.get("PATH", "") + ":" + BASE_PATH).lstrip(":")
        program = shutil.which(step.argv[0], path=env.get("PATH", "")) if "PATH" in env else None
        if program is None and step.argv[0] == "python":
            program = sys.executable  # the base image's interpreter
        if program is None:
            raise ReplayError(f"RUN {step.argv[0]}: not on the stage's PATH")
        args = [str(self.host(state, a)) if a.startswith("/") else a for a in step.argv[1:]]
        # The build machine's settings (proxy, package index) stand in for the builder's; the
        # stage's ENV wins, and nothing of this process's Python leaks in.
        base = {
            k: v for k, v in os.environ.items() if not k.startswith("PYTHON") and k != "VIRTUAL_ENV"
        }
        cwd = self.host(state, state.workdir)
        cwd.mkdir(parents=True, exist_ok=True)
        r = subprocess.run(
            [program, *args],
            cwd=cwd,
            env={**base, **env, "PATH": path},
            capture_output=True,
            text=True,
            timeout=900,
        )
        if r.returncode != 0:
            raise ReplayError(f"RUN {' '.join(step.argv)} failed:\n{r.stdout}\n{r.stderr}")

    def replay(self, stages: list[Stage]) -> Image:
        image = Image(Path(), self.work / "opt" / "venv", {}, [], [], [])
        users: set[str] = set()
        for stage in stages:
            root = self.work / "stages" / stage.name if stage.kind == "scratch" else self.work
            root.mkdir(parents=True, exist_ok=True)
            state = self.states[stage.name] = _State(stage, root)
            for step in stage.steps:
                if isinstance(step, Workdir):
                    state.workdir = posixpath.join(state.workdir, step.path)
                    if stage.kind != "node":
                        self.host(state, state.workdir).mkdir(parents=True, exist_ok=True)
                elif isinstance(step, Env):
                    for key, value in step.pairs:
                        state.env[key] = value.replace("$PATH", state.env.get(key, ""))
                elif isinstance(step, Copy):
                    self.copy(state, step)
                elif isinstance(step, NpmCi):
                    self.npm_ci(state, step)
                elif isinstance(step, Run):
                    self.run(state, step)
                elif isinstance(step, AddUser):
                    users.add(f"{step.uid}:{step.gid}")
                elif isinstance(step, User):
                    if step.spec not in users:
                        raise ReplayError(f"USER {step.spec}: no such user created in this stage")
                    image.user = step.spec
                elif isinstance(step, Cmd):
                    image.cmd = list(step.argv)
                elif isinstance(step, Healthcheck):
                    image.healthcheck = list(step.argv)
        final = self.states[stages[-1].name]
        image.tree = self.host(final, final.workdir)
        image.env = self.env(final)
        return image


def build_image(work: Path) -> Image:
    """Clone, filter, replay the Dockerfile; raises if any step fails."""
    clone = work / "clone"
    subprocess.run(
        ["git", "clone", "--quiet", "--no-hardlinks", str(ROOT), str(clone)],
        check=True,
        timeout=120,
    )
    context = work / "context"
    kept = build_context(clone, context)
    stages = plan((clone / "Dockerfile").read_text())
    image = _Replay(work, clone, context).replay(stages)
    image.context = kept
    return image
