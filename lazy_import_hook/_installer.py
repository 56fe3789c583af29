"""The installer interface, and running an installer safely.

An `Installer` turns an `InstallRequest` into a command line and classifies
its failures; `run()` runs any such command: stdin closed, output captured,
in its own session, killed with its whole process group at the timeout.
Each installer is a subclass in its own module (`_uv`, `_pip`); `_installers`
lists them. Imported only when something is about to be installed.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
from collections import deque

from ._child import installer_env
from ._errors import (
    HashMismatchError,
    InstallerFailedError,
    InstallTimeoutError,
    LazyInstallError,
    SdistRefusedError,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

TAIL_LINES = 25
SDIST_HINT = (
    "To allow it, set allow-sdist = true on the entry (or globally), accepting that its "
    "build backend runs arbitrary code at install time."
)


class InstallRequest:
    """What one installer run must do. Requirements reach the command line only
    after `--` (or in a requirements file), never as options."""

    __slots__ = (
        "compile_bytecode", "constraints", "only_binary", "require_hashes", "requirements",
        "requirements_file", "target",
    )  # fmt: skip

    def __init__(
        self,
        target: str,
        requirements: Sequence[str],
        *,
        constraints: str | None = None,
        requirements_file: str | None = None,
        require_hashes: bool = False,
        only_binary: bool = True,
        compile_bytecode: bool = True,
    ) -> None:
        self.target = target
        self.requirements = tuple(requirements)
        self.constraints = constraints
        self.requirements_file = requirements_file
        self.require_hashes = require_hashes
        self.only_binary = only_binary
        self.compile_bytecode = compile_bytecode


class Installer:
    """One way of installing into a folder. Subclasses set `name` and build commands."""

    name = ""

    def __init__(self, executable: str) -> None:
        self.executable = executable

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.executable}>"

    @classmethod
    def find(cls) -> Installer | None:
        """This installer, if this environment can run it."""
        raise NotImplementedError

    def command(self, request: InstallRequest) -> list[str]:
        raise NotImplementedError

    def manual_base(self, target: str) -> list[str]:
        """The start of a command a person could run by hand into `target`."""
        raise NotImplementedError

    def version_probe(self) -> Callable[[], str]:
        """Start finding this installer's version; the callable returns it."""
        return lambda: self.name

    def source_only(self, output: str, timeout: float, cwd: str) -> str | None:
        """The distribution that failed only because it ships no wheel, if the
        installer's words alone cannot tell and it can be asked."""
        return None

    def manual_command(
        self, target: str, requirements: Sequence[str], *, hashed: bool, only_binary: bool
    ) -> str:
        base = self.manual_base(target)
        if only_binary:
            base += ["--only-binary", ":all:"]
        if hashed:
            base += ["--require-hashes", "-r", "<file with each requirement and its --hash=...>"]
            return shlex.join(base)
        return shlex.join([*base, *requirements])

    def options(self, request: InstallRequest) -> list[str]:
        """The options both installers spell alike, then the requirements."""
        cmd = ["--only-binary", ":all:"] if request.only_binary else []
        if request.constraints:
            cmd += [self.constraint_option, request.constraints]
        if request.require_hashes:
            cmd.append("--require-hashes")
        if request.requirements_file:
            return [*cmd, "--requirement", request.requirements_file]
        return [*cmd, "--", *request.requirements]

    constraint_option = "--constraint"  # uv before 0.5.4 knows only the singular too


def write_requirements(path: str, requirements: Sequence[str], hashes: Sequence[str]) -> None:
    """A requirements file carrying the hashes (pip/uv take --hash only there).

    Without the markers: an installed entry's requirements are those whose
    marker is true here (evaluated when the allowlist was validated), and a
    marker's quoted string could hold " --x ", which a requirements file
    would read as an option. packaging writes `name[extras]spec; marker`,
    and nothing before the marker can hold a ';'."""
    options = " ".join(f"--hash={h}" for h in hashes)
    with open(path, "w", encoding="utf-8") as f:
        for spec in requirements:
            f.write(f"{spec.partition(';')[0].rstrip()} {options}\n")


def installer_environment() -> dict[str, str]:
    """The application's environment (so PIP_*, UV_*, pip.conf apply), minus
    what `child_env()` adds, plus the marker that makes the hook inert."""
    return installer_env(os.environ)


def run(
    cmd: list[str],
    *,
    timeout: float,
    stream: Callable[[str], None] | None = None,
    cwd: str | None = None,
    on_start: Callable[[], None] | None = None,
) -> tuple[int | None, str]:
    """Run an installer: stdin closed, output captured (and streamed if asked),
    in its own session so a Ctrl-C aimed at the application cannot leave a
    half-written install, the whole process group killed at the timeout.
    `cwd` should be a private folder: `python -m pip` imports a `pip/` found
    in the working directory, and a requirement such as
    `x-1.0-py3-none-any.whl` names a file there. `on_start` runs as soon as
    the installer is started, while it works.
    Returns (exit code, or None on timeout; the output's tail).
    """
    proc = subprocess.Popen(
        die_with_parent(cmd), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, errors="replace", start_new_session=True, env=installer_environment(), cwd=cwd,
    )  # fmt: skip
    timed_out = threading.Event()

    def kill() -> None:
        timed_out.set()
        kill_group(proc)

    timer = threading.Timer(timeout, kill)
    timer.daemon = True
    timer.start()
    try:
        code, tail = _collect(proc, stream, on_start)
    finally:
        timer.cancel()
    return (None if timed_out.is_set() else code), tail


def die_with_parent(cmd: list[str]) -> list[str]:
    """On Linux, `cmd` run so that it is killed when this process dies, even by
    SIGKILL: util-linux's setpriv (2.33 or later) sets the parent-death signal
    and execs it. Elsewhere an orphaned installer runs until its timeout."""
    setpriv = _setpriv()
    return [setpriv, "--pdeathsig", "KILL", "--", *cmd] if setpriv else cmd


_SETPRIV: list[str | None] = []  # found once per process


def _setpriv() -> str | None:
    if not _SETPRIV:
        found = shutil.which("setpriv") if sys.platform.startswith("linux") else None
        try:
            with open(found or "", "rb") as f:
                supported = b"pdeathsig" in f.read()  # its option table: no process to ask
        except OSError:
            supported = False
        _SETPRIV.append(found if supported else None)
    return _SETPRIV[0]


def _collect(
    proc: subprocess.Popen[str],
    stream: Callable[[str], None] | None,
    on_start: Callable[[], None] | None,
) -> tuple[int, str]:
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    try:
        if on_start is not None:
            on_start()  # overlaps with the installer's own work
        assert proc.stdout is not None
        for line in proc.stdout:
            tail.append(line.rstrip("\n"))
            if stream is not None:
                stream(line)
        return proc.wait(), "\n".join(tail)
    except BaseException:
        kill_group(proc)
        proc.wait()
        raise


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


class Failure:
    """A failed run, to be turned into the ImportError that says what happened."""

    __slots__ = ("code", "command", "dists", "name", "only_binary", "output", "source_only", "what")

    def __init__(
        self, name: str, what: str, dists: Sequence[str],
        *, code: int | None, output: str, command: str, only_binary: bool, source_only: str | None = None,
    ) -> None:  # fmt: skip
        self.name = name  # the import name
        self.what = what  # the requirements, as the user reads them
        self.dists = dists
        self.code = code  # None: timed out
        self.output = output
        self.command = command  # what to run by hand
        self.only_binary = only_binary
        self.source_only = source_only  # a distribution found only as a source archive


def failure_error(failure: Failure, timeout: float) -> LazyInstallError:
    """The ImportError for a failed run, classified from the installer's own words."""
    f = failure
    start = f"installing {f.what} for 'import {f.name}'"
    details = {"name": f.name, "command": f.command, "output": f.output}
    low = f.output.lower()
    if f.code is None:
        return InstallTimeoutError(
            f"{start} timed out after {timeout:g} s "
            "(raise 'timeout' in the configuration, or prefetch it)",
            **details,
        )
    if "do not match the hashes" in low or "hash mismatch" in low:
        return HashMismatchError(
            f"{start} failed: a downloaded file of {', '.join(f.dists)} does not match the pinned hashes",
            **details,
        )
    if f.only_binary and (
        f.source_only or "no usable wheels" in low or "building from source is disabled" in low
    ):
        which = f" of {f.source_only}" if f.source_only else ""
        return SdistRefusedError(
            f"{start} failed: only a source archive{which} was found, and installs are "
            f"binary-only by default so no build code runs. {SDIST_HINT}",
            **details,
        )
    hint = ""
    if f.only_binary and ("no matching distribution" in low or "from versions: none" in low):
        hint = f" No wheel was found. If it only ships a source archive: {SDIST_HINT}"
    return InstallerFailedError(f"{start} failed (exit status {f.code}).{hint}", **details)
