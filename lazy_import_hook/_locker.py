"""`lazy-import-hook lock`: every entry's closure resolved, exact and hashed.

Each active entry is resolved on its own (its requirements, under the core
environment's versions and the other entries' pins, as an install would be),
by the installer the plan chooses: uv's `pip compile --format pylock.toml`,
or pip's `install --dry-run --report`. An entry whose requirements did not
change keeps its closure unless upgraded; otherwise what the target already
holds, and the previous lock's versions, are preferred, so a range the target
satisfies never moves backwards.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile

from . import _distributions, _environment
from ._errors import ConfigError
from ._installer import InstallerTooOld, LockError
from ._lockfile import EntryLock, Locked, LockFile, group_name, this_environment
from ._pipconf import find_links, redacted

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

    from ._plan import Entry, Plan


class Target:
    """Which interpreter the lock is for: this one, or another
    (`--python-version`, `--platform`). ValueError for what cannot be told."""

    def __init__(self, python_version: str | None = None, platform: str | None = None) -> None:
        if python_version is not None and not re.fullmatch(r"3\.\d+(\.\d+)?", python_version):
            raise ValueError(f"--python-version {python_version!r}: write it as 3.12 (or 3.12.4)")
        self.python_version = python_version
        self.platform = platform
        self.system, self.machine = _system_and_machine(platform) if platform else this_system()

    @property
    def environment(self) -> str:
        """The lock's marker: exactly this interpreter, or what the options pin down."""
        if not (self.python_version or self.platform):
            return this_environment()
        version = ".".join((self.python_version or _this_minor()).split(".")[:2])
        return (
            f"python_version == '{version}' and sys_platform == '{self.system}' and platform_machine == "
            f"'{self.machine}' and implementation_name == '{sys.implementation.name}'"
        )


def _this_minor() -> str:
    return f"{sys.version_info[0]}.{sys.version_info[1]}"


def this_system() -> tuple[str, str]:
    import platform

    return sys.platform, platform.machine()


# uv's short names, and what they stand for.
_ALIASES = {"linux": "x86_64-unknown-linux-gnu", "macos": "aarch64-apple-darwin",
            "windows": "x86_64-pc-windows-msvc"}  # fmt: skip
_SYSTEMS = (("linux", "linux"), ("darwin", "darwin"), ("macos", "darwin"), ("win", "win32"))
_MACHINES = ("x86_64", "amd64", "aarch64", "arm64", "i686", "armv7l", "ppc64le", "s390x", "riscv64")
# What platform.machine() says on each system, by the machine's usual names.
_SPELLED = {
    ("darwin", "aarch64"): "arm64", ("darwin", "amd64"): "x86_64", ("linux", "amd64"): "x86_64",
    ("linux", "arm64"): "aarch64", ("win32", "x86_64"): "AMD64", ("win32", "amd64"): "AMD64",
    ("win32", "aarch64"): "ARM64", ("win32", "arm64"): "ARM64", ("win32", "i686"): "x86",
}  # fmt: skip


def _system_and_machine(platform: str) -> tuple[str, str]:
    """`sys.platform` and `platform.machine()` of an installer's platform name
    (uv's `linux`, `aarch64-apple-darwin`..., pip's `manylinux2014_x86_64`...)."""
    lowered = _ALIASES.get(platform.lower(), platform.lower())
    system = next((s for needle, s in _SYSTEMS if needle in lowered), "")
    machine = next((m for m in _MACHINES if m in lowered), "")
    if lowered.endswith("win32"):
        system, machine = "win32", machine or "i686"
    if not (system and machine):
        raise ValueError(
            f"--platform {platform!r}: cannot tell its operating system and machine; name both, as in "
            "x86_64-manylinux_2_28 or aarch64-apple-darwin (uv) or manylinux2014_x86_64 (pip)"
        )
    return system, _SPELLED.get((system, machine), machine)


def lock(
    plan: Plan, path: str, *, upgrade: Sequence[str] | bool = False, target: Target | None = None
) -> tuple[LockFile, list[str]]:
    """Resolve the plan's entries into the lock at `path`; returns it and one
    line per entry saying what happened."""
    from ._lockfile import write

    target = target or Target()
    previous = _previous(path)
    if previous is not None and previous.environment != target.environment:
        previous = None  # made for another interpreter: nothing to keep
    entries = sorted((e for e in plan.entries.values() if e.active), key=lambda e: e.import_name)
    resolver = _Resolver(plan, target, entries)
    result, report = LockFile({}, environment=target.environment, exclude_newer=resolver.cutoff), []
    for entry in entries:
        old = previous.entries.get(entry.import_name) if previous else None
        group = group_name(entry.import_name, [e.group for e in result.entries.values()])
        # Every entry is resolved again, the old closure preferred: what a
        # hand-edited lock added, or the cooldown now excludes, does not stay.
        packages = resolver.closure(entry, old, _asked(entry, upgrade))
        kept = old is not None and [p.key() for p in packages] == [p.key() for p in old.packages]
        result.entries[entry.import_name] = EntryLock(group, entry.requirements, entry.hashes, packages)
        report.append(f"{entry.import_name}: {'unchanged, ' if kept else ''}{_describe(packages)}")
    write(path, result)
    return result, report


def _previous(path: str) -> LockFile | None:
    """The lock being replaced: preferred, unless it does not parse (then it
    is replaced, with a warning); one that must not be trusted is an error."""
    from ._errors import warn
    from ._lockfile import UnreadableLock, read

    if not os.path.exists(path):
        return None
    try:
        return read(path)
    except UnreadableLock as e:
        warn(f"replacing it: {e}")
        return None


def _asked(entry: Entry, upgrade: Sequence[str] | bool) -> bool:
    return upgrade is True or (not isinstance(upgrade, bool) and entry.import_name in upgrade)


def _describe(packages: Sequence[Locked]) -> str:
    return ", ".join(f"{p.name} {p.version}" for p in packages) or "nothing"


class _Resolver:
    """Resolves entries one by one with the plan's installer, configuration and cutoff."""

    def __init__(self, plan: Plan, target: Target, entries: Sequence[Entry]) -> None:
        from ._config import pip_config
        from ._installers import choose
        from ._job import Job

        self.plan, self.target = plan, target
        try:
            self.installer, self.pip = choose(plan.settings.installer), pip_config(plan)
        except (FileNotFoundError, ValueError) as e:
            raise LockError(str(e)) from e
        self.cutoff = Job(plan, list(entries), "by lock").cutoff if entries else ""
        links = find_links(self.pip) if self.cutoff else []
        if links:
            shown = redacted(" ".join(links))
            raise LockError(
                f"min-release-age cannot be checked for files found through find-links ({shown}): "
                "they carry no upload time. Lock against an index (it publishes upload times)"
            )
        problem = self.installer.cooldown_problem() if self.cutoff else None
        if problem:
            raise LockError(problem)

    def closure(self, entry: Entry, old: EntryLock | None, upgrade: bool) -> list[Locked]:
        """The entry's closure: what the target holds and what was locked
        preferred (upgrading: the newest, from what the target holds up);
        without those preferences if they cannot be met, but never below a
        version the target holds."""
        installed = _installed(self.plan, entry)
        if upgrade:
            prefer = [f"{name}>={version}" for name, version in installed.items()]
        else:
            kept = {**{p.name: p.version for p in (old.packages if old else ())}, **installed}
            prefer = [f"{name}=={version}" for name, version in kept.items()]
        try:
            packages = self._resolve(entry, prefer)
        except InstallerTooOld:
            raise
        except LockError:
            if not prefer:
                raise
            packages = self._resolve(entry, [])
        _check(entry, packages, self.cutoff)
        _no_downgrade(entry, packages, installed)
        _same_files(entry, packages, old)
        return sorted(packages, key=lambda p: (p.name, p.filename))

    def _resolve(self, entry: Entry, prefer: list[str]) -> list[Locked]:
        with tempfile.TemporaryDirectory(prefix="lazy-import-hook-lock-") as work:
            constraints = os.path.join(work, "constraints.txt")
            core = _names(_environment.write_constraints(self.plan, [entry], constraints))
            with open(constraints, "a", encoding="utf-8") as f:
                f.writelines(f"{line}\n" for line in prefer if re.split("[=>]", line)[0] not in core)
            try:
                return self.installer.resolve(
                    entry.requirements, constraints, self.installer.launch(self.pip), work=work,
                    cutoff=self.cutoff, python_version=self.target.python_version,
                    platform=self.target.platform,
                )  # fmt: skip
            except LockError as e:  # its class kept: InstallerTooOld is not retried
                raise type(e)(f"{self.installer.name}, resolving {entry.import_name}: {e}") from e


def _installed(plan: Plan, entry: Entry) -> dict[str, str]:
    """The entry's own distributions the target holds at a version its
    requirements allow: a range already satisfied stays where it is."""
    from ._holdings import installed_matches

    versions = _distributions.installed_versions(plan.target)
    return {
        dist: versions[dist]
        for req, dist in zip(entry.requirements, entry.dists)
        if dist in versions and installed_matches(req, versions[dist])
    }


def _same_files(entry: Entry, packages: Sequence[Locked], old: EntryLock | None) -> None:
    """A file the lock named must still have the hash the lock recorded: the
    index serving other bytes under the same name is what tampering looks like."""
    before = {p.filename: p.sha256 for p in (old.packages if old else ())}
    changed = [p.filename for p in packages if before.get(p.filename, p.sha256) != p.sha256]
    if changed:
        raise LockError(
            f"{entry.import_name}: the index now serves {', '.join(changed)} with another sha256 than the "
            "lock recorded: the file was replaced upstream, or someone is tampering. Find out which before "
            "you remove the entry from the lock"
        )


def _no_downgrade(entry: Entry, packages: Sequence[Locked], installed: dict[str, str]) -> None:
    from packaging.version import Version

    lower = [p for p in packages if p.name in installed and Version(p.version) < Version(installed[p.name])]
    if lower:
        moves = ", ".join(f"{p.name} {installed[p.name]} -> {p.version}" for p in lower)
        raise LockError(
            f"{entry.import_name}: the lock would downgrade what the target holds ({moves}): the core "
            "environment's versions, the other entries or min-release-age exclude the installed version; "
            "relax them, or pin the entry to the version you want"
        )


def _names(lines: Sequence[str]) -> set[str]:
    return {line.partition("==")[0] for line in lines}


def _check(entry: Entry, packages: list[Locked], cutoff: str) -> None:
    """Every file hashed; none uploaded after the cooldown's cutoff; an
    entry's own hashes (a hash-pinned entry) honoured."""
    unhashed = [p.filename for p in packages if not p.sha256]
    if unhashed:
        raise LockError(f"{entry.import_name}: no sha256 for {', '.join(unhashed)}")
    late = [p.filename for p in packages if cutoff and p.upload_time and p.upload_time > cutoff]
    if late:  # the installer applied the cutoff; this is its second check
        raise LockError(f"{entry.import_name}: {', '.join(late)} uploaded after the cutoff {cutoff}")
    if entry.hashes:
        allowed = {h.partition(":")[2] for h in entry.hashes}
        wrong = [p.filename for p in packages if p.sha256 not in allowed]
        if wrong:
            raise LockError(f"{entry.import_name}: {', '.join(wrong)} do not match the entry's own hashes")


def default_path(plan: Plan, output: str | None) -> str:
    """Where `lock` writes: --output, the `lock` setting, or beside the pyproject."""
    from ._settings import default_lock

    if output:
        path = os.path.abspath(output)
    elif plan.settings.lock:
        path = plan.settings.lock
    elif plan.pyproject:
        path = default_lock(plan.pyproject)
    else:
        raise ConfigError(
            "this allowlist has no pyproject: name the lock file with --output, and give it as lock= to "
            "install()"
        )
    if os.path.isdir(path) or not os.path.isdir(os.path.dirname(path)):
        raise ConfigError(f"cannot write the lock file {path}: name a file in a folder that exists")
    return path
