"""Running an installer: stdin closed, output captured, its own session, a
timeout that kills its whole process group, death with the application
(Linux), and someone watching so that no wait is ever silent.

On Linux the installer is started with `os.posix_spawn` and watched from a
`_thread`: `subprocess` and `threading`, with what they import, take about
20 ms, and the first install of a process would pay them before its
installer starts. Elsewhere, or where posix_spawn cannot start a session,
`subprocess` does it."""

from __future__ import annotations

import _thread
import os
import sys
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    import subprocess
    from collections.abc import Mapping, Sequence
    from typing import IO, Protocol, Union

    class _Spawned(Protocol):
        pid: int
        stdout: IO[str] | None

        def wait(self) -> int: ...

        def poll(self) -> int | None: ...

        def kill(self) -> None: ...

    Process = Union["subprocess.Popen[str]", _Spawned]

TAIL_LINES = 25
SIGKILL = 9  # fixed by POSIX (`kill -9`); the signal module would import enum
# Linux only: /proc lists the descriptors to close in the child (elsewhere
# that list can be short, or go stale and fail the spawn). pytest-subprocess's
# fake installers replace subprocess.Popen: the test suite turns this off in
# its own process.
POSIX_SPAWN = sys.platform.startswith("linux") and hasattr(os, "posix_spawn")
SHELL = "/bin/sh"  # between setpriv and the installer; it also changes folder for posix_spawn


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
        self.lines: list[str] = []  # not a deque: collections costs ~5 ms before the installer starts
        self.last_time = time.monotonic()

    @property
    def last_line(self) -> str:
        return self.lines[-1] if self.lines else ""

    @property
    def tail(self) -> list[str]:
        return self.lines[-TAIL_LINES:]

    def add(self, line: str) -> None:
        self.lines.append(line)
        if len(self.lines) > 2 * TAIL_LINES:
            del self.lines[:-TAIL_LINES]
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
    proc = start(list(cmd), env, cwd)
    output, timed_out, stop = _Output(), _Flag(), _Flag()
    try:
        _watch(proc, output, timeout, stall_after, watcher=watcher, timed_out=timed_out, stop=stop)
        watcher.started(proc.pid)
        code = _collect(proc, output, watcher)
    except BaseException:  # Ctrl-C, a watcher's error: never leave the installer behind
        kill_group(proc)
        proc.wait()
        raise
    finally:
        stop.set()
        watcher.finished()
    return (None if timed_out.is_set() else code), "\n".join(output.tail)


def start(cmd: list[str], env: Mapping[str, str], cwd: str | None) -> Process:
    """`cmd` in a session of its own, stdin closed, stdout and stderr on one pipe."""
    if POSIX_SPAWN and os.path.isabs(cmd[0]):  # posix_spawn searches no PATH
        try:
            return SpawnedProcess(cmd, env, cwd)
        except NotImplementedError:  # a posix_spawn without setsid
            pass
    import subprocess

    umask = installer_umask()
    return subprocess.Popen(
        die_with_parent(cmd), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, errors="replace", start_new_session=True,
        env=dict(env), cwd=cwd, umask=-1 if umask is None else umask,
    )  # fmt: skip


class SpawnedProcess:
    """What run() needs of a Popen (pid, stdout, wait, poll), started by
    os.posix_spawn. posix_spawn has no working directory: the shell that
    die_with_parent() puts before the command changes to it."""

    def __init__(self, cmd: list[str], env: Mapping[str, str], cwd: str | None) -> None:
        if (cwd or installer_umask() is not None) and not os.access(SHELL, os.X_OK):  # distroless
            raise NotImplementedError(f"no {SHELL} to change to the installer's folder or umask")
        argv = die_with_parent(cmd, cwd=os.path.abspath(cwd) if cwd else "")  # absolute: no CDPATH
        read_end, write_end = os.pipe()  # both close on exec; the child gets dup2 copies
        try:
            self.pid = os.posix_spawn(
                argv[0], argv, dict(env), setsid=True, setsigdef=_python_ignores(), file_actions=[
                    (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                    (os.POSIX_SPAWN_DUP2, write_end, 1), (os.POSIX_SPAWN_DUP2, write_end, 2),
                    *_close_the_rest(),
                ],
            )  # fmt: skip
        except BaseException:
            os.close(read_end)
            raise
        finally:
            os.close(write_end)
        self.stdout: IO[str] | None = open(read_end, encoding="utf-8", errors="replace")  # noqa: SIM115
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            self._reap(os.WNOHANG)
        return self.returncode

    def wait(self) -> int:
        while self.returncode is None:
            self._reap(0)
        if self.stdout is not None:
            self.stdout.close()
            self.stdout = None
        return self.returncode

    def kill(self) -> None:
        os.kill(self.pid, SIGKILL)

    def _reap(self, options: int) -> None:
        try:
            pid, status = os.waitpid(self.pid, options)
        except ChildProcessError:  # reaped elsewhere (SIGCHLD ignored): as subprocess does
            pid, status = self.pid, 0
        if pid == self.pid:
            self.returncode = os.waitstatus_to_exitcode(status)


def _close_the_rest() -> list[tuple[int, ...]]:
    """File actions that close every descriptor above 2 in the child, as
    subprocess does: closefrom(3) where Python and the C library have it,
    else each inheritable one /proc lists now."""
    closefrom = getattr(os, "POSIX_SPAWN_CLOSEFROM", None)
    if closefrom is not None:
        return [(closefrom, 3)]
    try:
        fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except (OSError, ValueError) as e:
        raise NotImplementedError("no list of this process's open descriptors") from e
    return [(os.POSIX_SPAWN_CLOSE, fd) for fd in fds if fd > 2 and _inheritable(fd)]


def _inheritable(fd: int) -> bool:
    try:
        return os.get_inheritable(fd)
    except OSError:  # the listing's own descriptor, closed by now
        return False


def _python_ignores() -> tuple[int, ...]:
    """The signals Python ignores and subprocess sets back to their default
    in the child (SIGPIPE, SIGXFSZ), from _signal: signal imports enum."""
    numbers = __import__("_signal")  # built in: nothing on sys.path can stand in for it
    return tuple(getattr(numbers, name) for name in ("SIGPIPE", "SIGXFSZ") if hasattr(numbers, name))


class _Flag:
    """threading.Event's set, is_set and wait, on a bare lock. One thread
    sets it (two at once could release the lock twice)."""

    def __init__(self) -> None:
        self._set = False
        self._lock = _thread.allocate_lock()
        self._lock.acquire()

    def set(self) -> None:
        if not self._set:
            self._set = True
            self._lock.release()

    def is_set(self) -> bool:
        return self._set

    def wait(self, timeout: float) -> bool:
        """True once set; False after `timeout` seconds."""
        if self._lock.acquire(timeout=timeout):
            self._lock.release()
        return self._set


def _collect(proc: Process, output: _Output, watcher: Watcher) -> int:
    assert proc.stdout is not None
    for line in proc.stdout:
        output.add(line.rstrip("\n"))
        watcher.output(line)
    return proc.wait()


def _watch(
    proc: Process,
    output: _Output,
    timeout: float,
    stall_after: float,
    *,
    watcher: Watcher,
    timed_out: _Flag,
    stop: _Flag,
) -> None:
    """A thread that kills the installer at the timeout and reports silences
    until `stop` is set."""
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

    _thread.start_new_thread(watch, ())  # dies with the process, as a daemon thread


class Probe:
    """A short helper command started beside the installer (its version, its
    resolution), dying with the application as the installer does; `result()`
    waits for it, `kill()` gives up on it."""

    def __init__(
        self, cmd: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: str | None = None,
        given: str | None = None,
    ):  # fmt: skip
        import subprocess  # not before an installer: a probe starts beside it, or after the import

        self.given = given  # its standard input (none: /dev/null)
        self.proc = subprocess.Popen(
            die_with_parent(list(cmd)), stdin=subprocess.DEVNULL if given is None else subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace",
            start_new_session=True, env=None if env is None else dict(env), cwd=cwd,
        )  # fmt: skip

    def result(self, timeout: float | None = 60) -> tuple[int | None, str, str]:
        """(exit code or None if it had to be stopped, stdout, stderr); None:
        wait as long as it runs."""
        import subprocess

        try:
            out, err = self.proc.communicate(self.given, timeout=timeout)
        except (subprocess.TimeoutExpired, OSError):
            self.kill()
            return None, "", "it did not answer in time"
        return self.proc.returncode, out, err

    def kill(self) -> None:
        if self.proc.poll() is None:
            kill_group(self.proc)
            self.proc.wait()


def kill_group(proc: Process) -> None:
    try:
        # The installer leads its own session, so its group id is its pid; a
        # pid <= 0 (a test double) must never reach killpg, which would
        # signal our own group.
        if hasattr(os, "killpg") and proc.pid > 0:
            os.killpg(proc.pid, SIGKILL)
        else:
            proc.kill()
    except (ProcessLookupError, PermissionError):
        pass


# The shell between setpriv and the command (its $0 names it in messages).
# $1: this process's pid, once the parent-death signal is set (a parent that
# died before, between fork and setpriv's prctl, left the child to another
# parent, and no signal would ever come), or "-"; $2: the folder to run in
# (posix_spawn has none), or "".
# $3: the umask to set (octal), or "".
_LAUNCH = (
    'if [ "$1" != - ] && [ "$PPID" != "$1" ]; then exit 1; fi; '
    'if [ -n "$2" ]; then cd "$2" || exit 1; fi; '
    'if [ -n "$3" ]; then umask "$3" || exit 1; fi; shift 3; exec "$@"'
)


def die_with_parent(cmd: list[str], cwd: str = "") -> list[str]:
    """On Linux, `cmd` run so that it is killed when this process dies, even by
    SIGKILL: util-linux's setpriv (2.33 or later) sets the parent-death signal,
    then a shell checks that its parent is still this process, changes to
    `cwd` if given, tightens the umask (`installer_umask`), and execs `cmd`
    (same pid, same session). Elsewhere an orphaned installer runs until its
    timeout."""
    setpriv = _setpriv()
    umask = installer_umask()
    if not setpriv and not cwd and (umask is None or not os.access(SHELL, os.X_OK)):
        return cmd  # subprocess sets the umask then (Popen's umask=)
    head = [setpriv, "--pdeathsig", "KILL", "--"] if setpriv else []
    pid = str(os.getpid()) if setpriv else "-"
    mask = "" if umask is None else f"{umask:03o}"
    return [*head, SHELL, "-c", _LAUNCH, "lazy-import-hook", pid, cwd, mask, *cmd]


def installer_umask() -> int | None:
    """The umask an installer runs with: this process's, with writing by the
    group and by others masked, or None when it is already (022, 077). What
    it installs is then writable by this user alone: the target's safety
    check looks at the folder, not at every file an installer made in it."""
    current = _current_umask()
    return None if current & 0o022 == 0o022 else current | 0o022


def _current_umask() -> int:
    try:  # Linux 4.7+: read without changing it
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    current = os.umask(0o077)  # reading it elsewhere means setting it: briefly, to the stricter
    os.umask(current)
    return current


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
        _SETPRIV.append(found if supported and os.access(SHELL, os.X_OK) else None)
    return _SETPRIV[0]
