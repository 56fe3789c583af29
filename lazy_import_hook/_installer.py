"""uv / pip command lines, and running them.

Imported only when something is about to be installed: it pulls in
`subprocess`, `packaging` and friends, which the startup path never needs.
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

from ._errors import (
    HashMismatchError,
    InstallerFailedError,
    InstallTimeoutError,
    LazyInstallError,
    SdistRefusedError,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from ._plan import Entry

TAIL_LINES = 25
_SDIST_HINT = (
    "To allow it, set allow-sdist = true on the entry (or globally), accepting that its "
    "build backend runs arbitrary code at install time."
)


def find_uv() -> str | None:
    """uv from the `uv` package of this environment, else from PATH."""
    # Where the uv package puts it in a virtual environment; checking costs a
    # stat, where importing `uv` (which imports sysconfig) costs milliseconds.
    beside = os.path.join(os.path.dirname(sys.executable), "uv")
    if os.access(beside, os.X_OK) and not os.path.isdir(beside):
        return beside
    try:
        from uv import find_uv_bin

        path: str | None = find_uv_bin()
    except (ImportError, FileNotFoundError):
        path = None
    return path or shutil.which("uv")


def pip_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("pip") is not None


def choose(preference: str) -> tuple[str, str | None]:
    """(installer kind, uv path). `auto` means uv whenever it is available.

    Forcing an installer that is missing raises, never silently falls back.
    """
    if preference in ("auto", "uv"):
        uv = find_uv()
        if uv:
            return "uv", uv
        if preference == "uv":
            raise FileNotFoundError(
                "installer 'uv' was requested but no uv was found (neither the uv package "
                "nor uv on PATH): pip install uv, or use installer='pip'"
            )
    if not pip_available():
        raise FileNotFoundError(
            f"no installer available: {sys.executable} has no pip and no uv was found; "
            "pip install uv, or install pip into this environment"
        )
    return "pip", None


def build_command(
    kind: str,
    uv: str | None,
    *,
    target: str,
    specs: Sequence[str],
    constraints: str | None,
    requirements_file: str | None = None,
    require_hashes: bool = False,
    only_binary: bool = True,
    compile_bytecode: bool = True,
) -> list[str]:
    """The exact argv. Configuration-derived values only ever appear after `--`."""
    if kind == "uv":
        assert uv is not None
        cmd = [uv, "pip", "install", "--python", sys.executable, "--target", target, "--no-progress"]
        if compile_bytecode:
            cmd.append("--compile-bytecode")
    else:
        cmd = [
            sys.executable, "-m", "pip", "install", "--target", target,
            "--no-input", "--disable-pip-version-check", "--no-warn-script-location",
        ]  # fmt: skip
        if not compile_bytecode:
            cmd.append("--no-compile")
    if only_binary:
        cmd += ["--only-binary", ":all:"]
    if constraints:
        cmd += ["--constraint" if kind == "pip" else "--constraints", constraints]
    if require_hashes:
        cmd.append("--require-hashes")
    if requirements_file:
        cmd += ["--requirement", requirements_file]
    else:
        cmd += ["--", *specs]
    return cmd


def manual_command(kind: str, target: str, entry: Entry, only_binary: bool) -> str:
    """What a person could run by hand (into the target, outside any staging)."""
    if kind == "uv":
        base = ["uv", "pip", "install", "--python", sys.executable, "--target", target]
    else:
        base = [sys.executable, "-m", "pip", "install", "--target", target]
    if only_binary:
        base += ["--only-binary", ":all:"]
    if entry.hashes:
        base += ["--require-hashes", "-r", "<file with each requirement and its --hash=...>"]
        return shlex.join(base)
    return shlex.join([*base, *entry.requirements])


def write_requirements(path: str, entry: Entry) -> None:
    """A requirements file carrying the entry's hashes (pip/uv take --hash only there).

    Without the markers: an installed entry's requirements are those whose
    marker is true here (evaluated when the allowlist was validated), and a
    marker's quoted string could hold " --x ", which a requirements file
    would read as an option. packaging writes `name[extras]spec; marker`,
    and nothing before the marker can hold a ';'."""
    hashes = " ".join(f"--hash={h}" for h in entry.hashes)
    with open(path, "w", encoding="utf-8") as f:
        for spec in entry.requirements:
            f.write(f"{spec.partition(';')[0].rstrip()} {hashes}\n")


def core_distributions(exclude_paths: Sequence[str]) -> dict[str, str]:
    """Canonical name -> version of every distribution the core environment has.

    Read from *.dist-info / *.egg-info folder names on sys.path (first one wins,
    as for imports): no metadata files are opened, so 300 distributions cost a
    few milliseconds, where importlib.metadata takes over a hundred.
    """
    from packaging.utils import canonicalize_name

    excluded = {os.path.abspath(p) for p in exclude_paths}
    seen: dict[str, str] = {}
    for entry in sys.path:
        folder = os.path.abspath(entry or os.getcwd())
        if folder in excluded or not os.path.isdir(folder):
            continue
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        for name in names:
            for suffix in (".dist-info", ".egg-info"):
                if name.endswith(suffix):
                    dist, sep, version = name[: -len(suffix)].partition("-")
                    key = str(canonicalize_name(dist))
                    if sep and key not in seen:
                        seen[key] = version.partition("-")[0]
    return seen


def core_constraints(exclude_paths: Sequence[str], exclude_dists: Sequence[str]) -> list[str]:
    """`name==version` lines pinning the core environment's distributions."""
    from packaging.utils import canonicalize_name
    from packaging.version import InvalidVersion, Version

    skip = {canonicalize_name(d) for d in exclude_dists}
    lines = []
    for key, version in sorted(core_distributions(exclude_paths).items()):
        try:
            parsed = Version(version)
        except InvalidVersion:
            continue
        if key not in skip and parsed.local is None:  # a local build (+cpu) is on no index
            lines.append(f"{key}=={version}")
    return lines


def allowlist_constraints(entries: Iterable[Entry], current: Entry, core: Sequence[str]) -> list[str]:
    """The allowlist's own pins for the other entries, so a dependency that is
    also allow-listed resolves to the version the allowlist names.

    Distributions the core environment has keep the core's pin (the core
    copy is what gets imported anyway); extras and markers are dropped, as
    constraint files require.
    """
    skip = {line.partition("==")[0] for line in core} | set(current.dists)
    lines: dict[str, str] = {}
    for entry in entries:
        if entry.active:
            for pin in entry.pins:  # canonical name first, then the specifier
                name = pin[: len(pin) - len(pin.lstrip("abcdefghijklmnopqrstuvwxyz0123456789-"))]
                if name not in skip:
                    lines.setdefault(name, pin)
    return sorted(lines.values())


def installer_environment() -> dict[str, str]:
    """The application's environment (so PIP_*, UV_*, pip.conf apply), minus
    what `child_env()` adds: the hook must never run inside the installer."""
    from ._hook import without_child_hook

    return without_child_hook(os.environ)


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
    in the working directory, uv reads its configuration there, and a
    requirement such as `x-1.0-py3-none-any.whl` names a file there.
    `on_start` runs as soon as the installer is started, while it works.
    Returns (exit code, or None on timeout; the output's tail).
    """
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        start_new_session=True,
        env=installer_environment(),
        cwd=cwd,
    )
    timed_out = threading.Event()

    def kill() -> None:
        timed_out.set()
        kill_group(proc)

    timer = threading.Timer(timeout, kill)
    timer.daemon = True
    timer.start()
    try:
        if on_start is not None:
            on_start()  # overlaps with the installer's own work
        assert proc.stdout is not None
        for line in proc.stdout:
            tail.append(line.rstrip("\n"))
            if stream is not None:
                stream(line)
        code = proc.wait()
    except BaseException:
        kill_group(proc)
        proc.wait()
        raise
    finally:
        timer.cancel()
    return (None if timed_out.is_set() else code), "\n".join(tail)


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


def pip_source_only(output: str, timeout: float, cwd: str) -> str | None:
    """pip says only "from versions: none" when --only-binary hides a source
    archive. Ask pip's index listing (which shows every format) whether the
    distribution exists at all; if it does, only a source archive does."""
    import re

    found = re.search(r"No matching distribution found for ([A-Za-z0-9._-]+)", output)
    if not found:
        return None
    probe = [sys.executable, "-m", "pip", "index", "versions", found.group(1)]
    try:
        result = subprocess.run(
            probe,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=min(timeout, 60),
            check=False,
            env=installer_environment(),
            cwd=cwd,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return found.group(1) if result.returncode == 0 and "versions:" in result.stdout else None


def failure(
    name: str,
    entry: Entry,
    code: int | None,
    output: str,
    command: str,
    timeout: float,
    only_binary: bool,
    source_only: str | None = None,
) -> LazyInstallError:
    """The ImportError for a failed run, classified from the installer's own words.

    `source_only`: a distribution pip could not find as a wheel but that does
    exist as a source archive (see `pip_source_only`).
    """
    what = ", ".join(entry.requirements)
    if code is None:
        return InstallTimeoutError(
            f"installing {what} for 'import {name}' timed out after {timeout:g} s "
            "(raise 'timeout' in the configuration, or prefetch it)",
            name=name,
            command=command,
            output=output,
        )
    low = output.lower()
    if "do not match the hashes" in low or "hash mismatch" in low:
        return HashMismatchError(
            f"installing {what} for 'import {name}' failed: a downloaded file of "
            f"{', '.join(entry.dists)} does not match the pinned hashes",
            name=name,
            command=command,
            output=output,
        )
    if only_binary and (
        source_only or "no usable wheels" in low or "building from source is disabled" in low
    ):
        which = f" of {source_only}" if source_only else ""
        return SdistRefusedError(
            f"installing {what} for 'import {name}' failed: only a source archive{which} was found, "
            f"and installs are binary-only by default so no build code runs. {_SDIST_HINT}",
            name=name,
            command=command,
            output=output,
        )
    hint = ""
    if only_binary and ("no matching distribution" in low or "from versions: none" in low):
        hint = f" No wheel was found. If it only ships a source archive: {_SDIST_HINT}"
    return InstallerFailedError(
        f"installing {what} for 'import {name}' failed (exit status {code}).{hint}",
        name=name,
        command=command,
        output=output,
    )
