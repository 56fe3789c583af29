"""The installer interface.

An `Installer` turns an `InstallRequest` into a command line, builds the
environment it runs with (one index configuration for every installer: the
operator's pip settings, see `_pipconf`), and its failures are classified
from its own words into the `LazyInstallError` that says what to do. Each
installer is a subclass in its own module (`_uv`, `_pip`); `_installers`
lists them. Running one is `_process.run`.
"""

from __future__ import annotations

import os

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
    from collections.abc import Callable, Mapping, Sequence

    from ._lockfile import Locked
    from ._pipconf import PipConfig
    from ._process import Probe

SDIST_HINT = (
    "To allow it, set allow-sdist = true on the entry (or globally), accepting that its "
    "build backend runs arbitrary code at install time."
)
# Variables that make an installer's Python noisy or break it, whoever set them
# (pip fails with a NameError when every import is lazy: PYTHON_LAZY_IMPORTS=all).
PYTHON_NOISE = (
    "PYTHONINSPECT", "PYTHONOPTIMIZE", "PYTHONVERBOSE", "PYTHONDEBUG", "PYTHONPROFILEIMPORTTIME",
    "PYTHONWARNINGS", "PYTHONTRACEMALLOC", "PYTHONDEVMODE", "PYTHON_LAZY_IMPORTS", "RUST_LOG",
)  # fmt: skip


class LockError(Exception):
    """A closure that could not be resolved, or cannot be trusted."""


class InstallerTooOld(LockError):
    """The installer's version cannot resolve what was asked: resolving again
    without the lock's preferences would only fail the same way, or worse,
    succeed elsewhere with a version nobody asked for."""


class InstallRequest:
    """What one installer run must do. Requirements reach the command line only
    after `--` (or in a requirements file), never as options."""

    __slots__ = (
        "compile_bytecode", "constraints", "exclude_newer", "no_deps", "only_binary", "report",
        "require_hashes", "requirements", "requirements_file", "target",
    )  # fmt: skip

    def __init__(  # noqa: PLR0913  (a record of named fields, all keyword-only)
        self,
        target: str,
        requirements: Sequence[str],
        *,
        constraints: str | None = None,
        requirements_file: str | None = None,
        require_hashes: bool = False,
        only_binary: bool = True,
        compile_bytecode: bool = True,
        no_deps: bool = False,
        exclude_newer: str = "",
        report: str = "",
    ) -> None:
        self.target = target
        self.requirements = tuple(requirements)
        self.constraints = constraints
        self.requirements_file = requirements_file
        self.require_hashes = require_hashes
        self.only_binary = only_binary
        self.compile_bytecode = compile_bytecode
        self.no_deps = no_deps  # a locked closure: exactly these files, nothing resolved
        self.exclude_newer = exclude_newer  # RFC 3339 cutoff of the release-age cooldown
        self.report = report  # where pip writes what it installed (provenance)


class Launch:
    """How an installer is started: the environment it gets, the options the
    operator's settings add (before `--`), and what was not passed on."""

    __slots__ = ("dropped", "env", "needs", "options")

    def __init__(
        self, env: dict[str, str], options: list[str], dropped: list[str], needs: tuple[str, str] = ("", "")
    ) -> None:
        self.env = env
        self.options = options
        self.dropped = dropped  # names of settings that would change where or what
        # The installer's version this launch needs, and for what ("" if any):
        # an older one ignores part of it, which only shows when it fails.
        self.needs = needs

    def needing(self, needs: tuple[str, str]) -> Launch:
        """This launch for a command that itself needs `needs`: the higher
        of the two versions is the one an older installer is told about."""
        from packaging.version import Version

        if not needs[0] or (self.needs[0] and Version(self.needs[0]) >= Version(needs[0])):
            return self
        return Launch(self.env, self.options, self.dropped, needs)

    def too_old(self, version: str) -> str:
        """Why `version` ("uv 0.4.10 (...)") cannot run this launch, or ""."""
        needed, what = self.needs
        name, found = [*version.split(" ", 2), ""][:2]
        if not needed or not found:
            return ""
        from packaging.version import InvalidVersion, Version

        try:
            older = Version(found) < Version(needed)
        except InvalidVersion:
            return ""
        return f" {name} {found} is older than {needed}, which {what}: upgrade {name}." if older else ""


class Installer:
    """One way of installing into a folder. Subclasses set `name` and build commands."""

    name = ""
    constraint_option = "--constraint"  # uv before 0.5.4 knows only the singular too
    # Whether the target may remember the version of this very program (its
    # path, size, mtime, ctime) instead of asking it beside every install.
    remembers_version = False
    exact_constraints_with_hashes = False  # only exact pins as constraints when every file is hashed

    def __init__(self, executable: str) -> None:
        self.executable = executable
        self.probes: list[Probe] = []  # helper commands started beside an install

    def stop_probes(self) -> None:
        """An install that failed: nobody will wait for its helpers."""
        while self.probes:
            self.probes.pop().kill()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.executable}>"

    @classmethod
    def find(cls) -> Installer | None:
        """This installer, if this environment can run it."""
        raise NotImplementedError

    def command(self, request: InstallRequest, launch: Launch | None = None) -> list[str]:
        raise NotImplementedError

    def launch(self, pip: PipConfig, env: Mapping[str, str] | None = None) -> Launch:
        """The environment and options that carry the operator's index settings."""
        raise NotImplementedError

    def index(self, pip: PipConfig, env: Mapping[str, str] | None = None) -> str:
        """Where this installer will look for packages, and who said so."""
        raise NotImplementedError

    def version_probe(self) -> Callable[[], str]:
        """Start finding this installer's version; the callable returns it."""
        return lambda: self.name

    def provenance_probe(self, request: InstallRequest, launch: Launch) -> Callable[[], object]:
        """Start finding which files the installer takes (called once it runs);
        the callable returns a list of `_lockfile.Locked`, or why not."""
        return lambda: "this installer reports no provenance"

    def provenance_after(
        self, request: InstallRequest, launch: Launch, committed: Sequence[str]
    ) -> Callable[[], object] | None:
        """A provenance that takes another command: built once `committed`
        (dist-info folder names) is in the target, before the request's files
        are removed; the callable runs it on a thread after the import has
        returned, and gives what `provenance_probe`'s does. None: none."""
        return None

    def source_only(self, output: str, timeout: float, cwd: str, env: Mapping[str, str]) -> str | None:
        """The distribution that failed only because it ships no wheel, if the
        installer's words alone cannot tell and it can be asked."""
        return None

    def resolve(
        self, requirements: Sequence[str], constraints: str, launch: Launch, *, work: str, cutoff: str,
        python_version: str | None = None, platform: str | None = None,
    ) -> list[Locked]:  # fmt: skip
        """The closure of `requirements`, each file with its sha256 (for a
        lock); raises LockError with the installer's words."""
        raise NotImplementedError

    def cooldown_problem(self) -> str | None:
        """Why this installer cannot apply a release-age cutoff, or None."""
        return None

    def cutoff_options(self, cutoff: str) -> list[str]:
        """The options that exclude files uploaded at or after `cutoff`."""
        raise NotImplementedError

    def options(self, request: InstallRequest, launch: Launch | None) -> list[str]:
        """The options both installers spell alike, then the requirements."""
        cmd = ["--only-binary", ":all:"] if request.only_binary else []
        if request.constraints:
            cmd += [self.constraint_option, request.constraints]
        if request.require_hashes:
            cmd.append("--require-hashes")
        if request.no_deps:
            cmd.append("--no-deps")
        if request.exclude_newer:
            cmd += self.cutoff_options(request.exclude_newer)
        cmd += launch.options if launch is not None else []
        if request.requirements_file:
            return [*cmd, "--requirement", request.requirements_file]
        return [*cmd, "--", *request.requirements]


def run_resolver(
    cmd: list[str], launch: Launch, work: str, timeout: float = 900,
    version_probe: Callable[[], Callable[[], str]] | None = None,
) -> str:  # fmt: skip
    """Run a resolving command; its stdout, or LockError with its last words
    (and, from `version_probe`, whether the installer is too old for `launch`)."""
    import subprocess

    from ._pipconf import redacted

    try:
        proc = subprocess.run(cmd, env=launch.env, cwd=work, capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL, check=False)  # fmt: skip
    except (OSError, subprocess.SubprocessError) as e:
        raise LockError(redacted(f"{cmd[0]} could not run: {e}")) from e  # a timeout quotes the command
    if proc.returncode != 0:
        # The version is asked only after a failure, of a launch that needs a newer one.
        too_old = launch.too_old(version_probe()()) if version_probe and launch.needs[0] else ""
        said = redacted((proc.stderr or proc.stdout).strip())[-1500:]
        raise (InstallerTooOld if too_old else LockError)(said + too_old)
    return proc.stdout


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


def base_environment(env: Mapping[str, str] | None = None) -> tuple[dict[str, str], list[str]]:
    """The application's environment without what `child_env()` adds, with
    the marker that makes the hook inert in the installer, without the
    variables that make an installer's Python noisy (named in the second
    value). Each installer then keeps or translates its own settings."""
    result = installer_env(os.environ if env is None else env)
    dropped = sorted(name for name in PYTHON_NOISE if name in result)
    for name in dropped:
        del result[name]
    return result, dropped


class Failure:
    """A failed run, to be turned into the ImportError that says what happened."""

    __slots__ = (
        "code", "command", "core", "dists", "layers", "locked", "name", "only_binary", "output",
        "source_only", "subject", "too_old",
    )  # fmt: skip

    def __init__(  # noqa: PLR0913  (a record of named fields)
        self, name: str, subject: str, dists: Sequence[str],
        *, code: int | None, output: str, command: str, only_binary: bool, core: Sequence[str] = (),
        locked: Sequence[str] = (), layers: Mapping[str, str] | None = None,
    ) -> None:  # fmt: skip
        self.name = name  # the import name
        self.subject = subject  # "installing x==1 for 'import x'", as the message starts
        self.dists = dists
        self.code = code  # None: timed out
        self.output = output
        self.command = command  # what to run by hand
        self.only_binary = only_binary
        self.core = core  # the core environment's pins ("name==version") every install honours
        self.locked = locked  # the lock's closure: "name==version sha256:HEX file" lines
        self.layers = layers or {}  # those of the core pins that a read-only layer holds -> the layer
        self.source_only: str | None = None  # a distribution found only as a source archive
        self.too_old = ""  # why the installer's version could not do what it was asked


def failure_error(failure: Failure, timeout: float) -> LazyInstallError:
    """The ImportError for a failed run, classified from the installer's own words."""
    f = failure
    details = {"name": f.name, "command": f.command, "output": f.output}
    low = f.output.lower()
    if f.code is None:
        return InstallTimeoutError(
            f"{f.subject} timed out after {timeout:g} s (raise 'timeout' in the configuration, "
            "or prefetch it before it is needed)",
            **details,
        )
    if "do not match the hashes" in low or "hash mismatch" in low or "size mismatch" in low:
        culprit = _mismatched_file(f)
        which = f" ({culprit})" if culprit else f" of {', '.join(f.dists)}"
        return HashMismatchError(
            f"{f.subject} failed: a downloaded file{which} does not match the pinned hashes; nothing "
            "was installed. It may have been tampered with: check the index, then lock again",
            **details,
        )
    source_only = "no usable wheels" in low or "building from source is disabled" in low
    if f.only_binary and (f.source_only or source_only):
        which = f" of {f.source_only}" if f.source_only else ""
        return SdistRefusedError(
            f"{f.subject} failed: only a source archive{which} was found, and installs are "
            f"binary-only by default so no build code runs. {SDIST_HINT}{f.too_old}",
            **details,
        )
    return InstallerFailedError(
        f"{f.subject} failed (exit status {f.code}).{_core_conflict(f)}{f.too_old}", **details
    )


def _mismatched_file(f: Failure) -> str | None:
    """The file that failed its hash: pip names its URL; uv names `name==version`,
    which the lock maps back to its file."""
    import re

    uv = re.search(r"mismatch for `([^`]+)`", f.output)
    if uv is not None:
        pin = uv.group(1)
        files = [line.split(" ")[2] for line in f.locked if line.split(" ")[0] == pin]
        return files[0] if files else pin
    pip = re.search(r"from ((?:https?|file)://\S+)", f.output)
    return pip.group(1).rstrip(":)").rsplit("/", 1)[-1] if pip else None


def _core_conflict(f: Failure) -> str:
    """Name the application's own packages (and the read-only layers'
    packages) the installer could not move."""
    low = f.output.lower().replace("_", "-")
    named = [pin for pin in f.core if pin.lower() in low]
    core = [pin for pin in named if pin not in f.layers]
    text = ""
    if core:
        text += (
            f" {_listed(core)} installed in the application's environment, which every install keeps "
            "(the core environment always wins), and this needs another version: upgrade it in the "
            "application's environment, or choose a version of the entry that works with it."
        )
    for layer in sorted({f.layers[pin] for pin in named if pin in f.layers}):
        text += (
            f" {_listed([p for p in named if f.layers.get(p) == layer])} in the read-only layer {layer}, "
            "which every install keeps (it comes before the target), and this needs another version: "
            "rebuild the layer with the new pins, or choose a version of the entry that works with it."
        )
    return text


def _listed(pins: Sequence[str]) -> str:
    """`a 1.0, b 2.0 are` (or `a 1.0 is`)."""
    return f"{', '.join(pin.replace('==', ' ') for pin in pins)} {'is' if len(pins) == 1 else 'are'}"
