"""Start a helper process and wait for the line that says it is ready (no sleeps)."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Sequence


class ReadyTimeout(RuntimeError):
    pass


def start_and_wait(
    argv: Sequence[str],
    marker: str,
    *,
    env: dict[str, str] | None = None,
    timeout: float = 30.0,
    stream: str = "stderr",
    echo: str | None = None,
) -> tuple[subprocess.Popen[bytes], list[str]]:
    """Start `argv` and block until `marker` appears in its output (stderr by default).

    Returns the process and the lines read so far. The other stream is inherited so test
    output still shows it. Raises ReadyTimeout (after killing the process) if the marker does
    not show up in time or the process exits first. With ``echo``, the lines after the marker
    are copied to our stderr behind that prefix (the demo shows the proxy's refusals that way);
    without it they are read and dropped, so the child never blocks on a full pipe.
    """
    kwargs: dict[str, object] = (
        {"stderr": subprocess.PIPE} if stream == "stderr" else {"stdout": subprocess.PIPE}
    )
    proc = subprocess.Popen(list(argv), env={**os.environ, **(env or {})}, **kwargs)  # type: ignore[call-overload]
    pipe = proc.stderr if stream == "stderr" else proc.stdout
    assert pipe is not None
    os.set_blocking(pipe.fileno(), False)
    sel = selectors.DefaultSelector()
    sel.register(pipe, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    buf = b""
    lines: list[str] = []
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ReadyTimeout(f"{argv[0]}: no {marker!r} within {timeout}s: {lines[-5:]}")
            if sel.select(left):
                chunk = pipe.read() or b""
                if not chunk and proc.poll() is not None:
                    raise ReadyTimeout(f"{argv[0]} exited {proc.returncode}: {lines[-10:]}")
                buf += chunk
                *done, buf = buf.split(b"\n")
                for raw in done:
                    line = raw.decode(errors="replace")
                    lines.append(line)
                    if marker in line:
                        sel.close()
                        _drain_in_background(pipe, echo)
                        return proc, lines
    except BaseException:
        sel.close()
        stop(proc)
        raise


def _drain_in_background(pipe: object, echo: str | None = None) -> None:
    """Keep reading the pipe so a chatty child never blocks on a full pipe buffer."""
    import threading

    def run() -> None:
        os.set_blocking(pipe.fileno(), True)  # type: ignore[attr-defined]
        if echo is None:
            for _ in iter(lambda: pipe.read(65536), b""):  # type: ignore[attr-defined]
                pass
            return
        for raw in iter(pipe.readline, b""):  # type: ignore[attr-defined]
            sys.stderr.write(echo + raw.decode(errors="replace").rstrip("\n") + "\n")
            sys.stderr.flush()

    threading.Thread(target=run, daemon=True).start()


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 10) -> int:
    """Signal the process, wait a bounded time, then kill it."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    return proc.returncode
