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

from . import _environment, _target
from ._errors import ConfigError
from ._installer import LockError
from ._lockfile import EntryLock, Locked, LockFile, group_name, this_environment

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

    from ._plan import Entry, Plan


class Target:
    """Which interpreter the lock is for: this one, or another (`--python-version`, `--platform`)."""

    def __init__(self, python_version: str | None = None, platform: str | None = None) -> None:
        self.python_version = python_version
        self.platform = platform

    @property
    def environment(self) -> str:
        """The lock's marker: exactly this interpreter, or what the options pin down."""
        if not (self.python_version or self.platform):
            return this_environment()
        version = ".".join((self.python_version or _this_minor()).split(".")[:2])
        parts = [f"python_version == '{version}'"]
        system = _sys_platform(self.platform) if self.platform else sys.platform
        parts += [f"sys_platform == '{system}'"] if system else []
        return " and ".join([*parts, f"implementation_name == '{sys.implementation.name}'"])


def _this_minor() -> str:
    return f"{sys.version_info[0]}.{sys.version_info[1]}"


def _sys_platform(platform: str) -> str:
    """`sys.platform` for an installer's platform name (uv's `linux`,
    `x86_64-apple-darwin`, pip's `manylinux2014_x86_64`...), "" if unknown."""
    lowered = platform.lower()
    for needle, system in (("linux", "linux"), ("darwin", "darwin"), ("macos", "darwin"), ("win", "win32")):
        if needle in lowered:
            return system
    return ""


def lock(
    plan: Plan, path: str, *, upgrade: Sequence[str] | bool = False, target: Target | None = None
) -> tuple[LockFile, list[str]]:
    """Resolve the plan's entries into the lock at `path`; returns it and one
    line per entry saying what happened."""
    from ._lockfile import read, write

    target = target or Target()
    previous = read(path) if os.path.exists(path) else None
    if previous is not None and previous.environment != target.environment:
        previous = None  # made for another interpreter: nothing to keep
    entries = sorted((e for e in plan.entries.values() if e.active), key=lambda e: e.import_name)
    resolver = _Resolver(plan, target, entries)
    result, report = LockFile({}, environment=target.environment, exclude_newer=resolver.cutoff), []
    for entry in entries:
        old = previous.entries.get(entry.import_name) if previous else None
        group = group_name(entry.import_name, [e.group for e in result.entries.values()])
        kept = old is not None and _kept(entry, old, upgrade)
        if old is not None and kept:
            packages = old.packages
        else:
            packages = resolver.closure(entry, old, _asked(entry, upgrade))
        result.entries[entry.import_name] = EntryLock(group, entry.requirements, entry.hashes, packages)
        report.append(f"{entry.import_name}: {'kept ' if kept else ''}{_describe(packages)}")
    write(path, result)
    return result, report


def _asked(entry: Entry, upgrade: Sequence[str] | bool) -> bool:
    return upgrade is True or (not isinstance(upgrade, bool) and entry.import_name in upgrade)


def _kept(entry: Entry, old: EntryLock, upgrade: Sequence[str] | bool) -> bool:
    return not _asked(entry, upgrade) and (old.requirements, old.hashes) == (entry.requirements, entry.hashes)


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
        except LockError:
            if not prefer:
                raise
            packages = self._resolve(entry, [])
        _check(entry, packages, self.cutoff)
        _no_downgrade(entry, packages, installed)
        return sorted(packages, key=lambda p: (p.name, p.filename))

    def _resolve(self, entry: Entry, prefer: list[str]) -> list[Locked]:
        with tempfile.TemporaryDirectory(prefix="lazy-import-hook-lock-") as work:
            constraints = os.path.join(work, "constraints.txt")
            core = _names(_environment.write_constraints(self.plan, [entry], constraints))
            with open(constraints, "a", encoding="utf-8") as f:
                f.writelines(f"{line}\n" for line in prefer if re.split("[=>]", line)[0] not in core)
            return self.installer.resolve(
                entry.requirements, constraints, self.installer.launch(self.pip), work=work,
                cutoff=self.cutoff, python_version=self.target.python_version, platform=self.target.platform,
            )  # fmt: skip


def _installed(plan: Plan, entry: Entry) -> dict[str, str]:
    """The entry's own distributions the target holds at a version its
    requirements allow: a range already satisfied stays where it is."""
    from ._allowlist import installed_matches

    versions = _target.installed_versions(plan.target)
    return {
        dist: versions[dist]
        for req, dist in zip(entry.requirements, entry.dists)
        if dist in versions and installed_matches(req, versions[dist])
    }


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
        return os.path.abspath(output)
    if plan.settings.lock:
        return plan.settings.lock
    if plan.pyproject:
        return default_lock(plan.pyproject)
    raise ConfigError(
        "this allowlist has no pyproject: name the lock file with --output, and give it as lock= to install()"
    )
