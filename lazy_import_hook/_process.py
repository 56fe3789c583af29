"""Running an installer: stdin closed, output captured, its own session, a
timeout that kills its whole process group, death with the application
(Linux), and someone watching so that no wait is ever silent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

TAIL_LINES = 25


class Watcher:
    """What a run tells whoever waits for it. The default says nothing."""

    def started(self, pid: int) -> None:
        """The installer runs (the application may do useful work meanwhile)."""

    def output(self, line: str) -> None:
        """One line the installer printed."""

    def silent(self, seconds: float, last_line: str) -> None:
        """The installer printed nothing for `seconds` (every `stall_after`)."""

    def tick(self, elapsed: float, last_line: str) -> None:
        """About twice a second, for a live progress line."""

    def finished(self) -> None:
        """The installer ended, whatever the outcome."""


class _Output:
    """The installer's output so far, and when it last said something."""

    def __init__(self) -> None:
        self.tail: deque[str] = deque(maxlen=TAIL_LINES)
        self.last_time = time.monotonic()

    @property
    def last_line(self) -> str:
        return self.tail[-1] if self.tail else ""

    def add(self, line: str) -> None:
        self.tail.append(line)
        self.last_time = time.monotonic()


def run(
    cmd: Sequence[str],
    *,
    env: Mapping[str, str],
    timeout: float,
    cwd: str | None = None,
    stall_after: float = 10.0,
    watcher: Watcher | None = None,
) -> tuple[int | None, str]:
    """Run an installer; returns (exit code, or None on timeout; its output's tail).

    `cwd` should be a private folder: `python -m pip` imports a `pip/` found
    in the working directory, and a requirement such as
    `x-1.0-py3-none-any.whl` names a file there."""
    watcher = watcher or Watcher()
    proc = subprocess.Popen(
        die_with_parent(list(cmd)), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, errors="replace", start_new_session=True,
        env=dict(env), cwd=cwd,
    )  # fmt: skip
    output = _Output()
    timed_out = threading.Event()
    watching = _watch(proc, output, timeout, stall_after, watcher=watcher, timed_out=timed_out)
    try:
        watcher.started(proc.pid)
        code = _collect(proc, output, watcher)
    finally:
        watching.set()
        watcher.finished()
    return (None if timed_out.is_set() else code), "\n".join(output.tail)


def _collect(proc: subprocess.Popen[str], output: _Output, watcher: Watcher) -> int:
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            output.add(line.rstrip("\n"))
            watcher.output(line)
        return proc.wait()
    except BaseException:  # Ctrl-C, a watcher's error: never leave the installer behind
        kill_group(proc)
        proc.wait()
        raise


def _watch(
    proc: subprocess.Popen[str],
    output: _Output,
    timeout: float,
    stall_after: float,
    *,
    watcher: Watcher,
    timed_out: threading.Event,
) -> threading.Event:
    """A thread that kills the installer at the timeout and reports silences;
    returns the event that stops it."""
    stop = threading.Event()
    started = time.monotonic()

    def watch() -> None:
        last_report = started
        while not stop.wait(max(0.0, min(0.5, started + timeout - time.monotonic()))):
            now = time.monotonic()
            if now - started >= timeout:
                timed_out.set()
                kill_group(proc)
                return
            quiet = now - output.last_time
            if quiet >= stall_after and now - last_report >= stall_after:
                last_report = now
                watcher.silent(quiet, output.last_line)
            watcher.tick(now - started, output.last_line)

    threading.Thread(target=watch, name="lazy-import-hook installer watch", daemon=True).start()
    return stop


class Probe:
    """A short helper command started beside the installer (its version, its
    resolution), dying with the application as the installer does; `result()`
    waits for it, `kill()` gives up on it."""

    def __init__(self, cmd: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: str | None = None):
        self.proc = subprocess.Popen(
            die_with_parent(list(cmd)), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, errors="replace", start_new_session=True,
            env=None if env is None else dict(env), cwd=cwd,
        )  # fmt: skip

    def result(self, timeout: float | None = 60) -> tuple[int | None, str, str]:
        """(exit code or None if it had to be stopped, stdout, stderr); None:
        wait as long as it runs."""
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except (subprocess.TimeoutExpired, OSError):
            self.kill()
            return None, "", "it did not answer in time"
        return self.proc.returncode, out, err

    def kill(self) -> None:
        if self.proc.poll() is None:
            kill_group(self.proc)
            self.proc.wait()


def kill_group(proc: subprocess.Popen[str]) -> None:
    try:
        # The installer leads its own session, so its group id is its pid; a
        # pid <= 0 (a test double) must never reach killpg, which would
        # signal our own group.
        if hasattr(os, "killpg") and proc.pid > 0:
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
    except (ProcessLookupError, PermissionError):
        pass


# Run by the child once its parent-death signal is set: a parent that died
# before that (between fork and setpriv's prctl) left it to another parent,
# and no signal would ever come.
_STILL_OURS = 'if [ "$PPID" != "$0" ]; then exit 1; fi; exec "$@"'


def die_with_parent(cmd: list[str]) -> list[str]:
    """On Linux, `cmd` run so that it is killed when this process dies, even by
    SIGKILL: util-linux's setpriv (2.33 or later) sets the parent-death signal,
    then a shell checks that its parent is still this process and execs `cmd`
    (same pid, same session). Elsewhere an orphaned installer runs until its
    timeout."""
    setpriv = _setpriv()
    if not setpriv:
        return cmd
    return [setpriv, "--pdeathsig", "KILL", "--", "/bin/sh", "-c", _STILL_OURS, str(os.getpid()), *cmd]


_SETPRIV: list[str | None] = []  # found once per process


def _setpriv() -> str | None:
    if not _SETPRIV:
        from ._files import on_path

        found = on_path("setpriv") if sys.platform.startswith("linux") else None
        try:
            with open(found or "", "rb") as f:
                supported = b"pdeathsig" in f.read()  # its option table: no process to ask
        except OSError:
            supported = False
        _SETPRIV.append(found if supported and os.access("/bin/sh", os.X_OK) else None)
    return _SETPRIV[0]
