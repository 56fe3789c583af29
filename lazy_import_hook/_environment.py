"""The application's own environment: what it has installed, as constraints.

Every install runs with the core environment's versions as constraints, so
nothing in the target needs another version of a package the application
already imports (the core copy is what gets imported anyway), plus the
allowlist's own pins for the other entries.
"""

from __future__ import annotations

import os
import sys

from ._files import atomic_write, dist_folders
from ._target import meta, read_trusted

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from ._plan import Entry, Plan

_SUFFIXES = (".dist-info", ".egg-info")


def core_distributions(exclude_paths: Sequence[str]) -> dict[str, str]:
    """Canonical name -> version of every distribution the core environment has.

    Read from *.dist-info / *.egg-info folder names on sys.path (first one wins,
    as for imports): no metadata files are opened, so 300 distributions cost a
    few milliseconds, where importlib.metadata takes over a hundred.
    """
    excluded = {os.path.abspath(p) for p in exclude_paths}
    seen: dict[str, str] = {}
    for entry in sys.path:
        folder = os.path.abspath(entry or os.getcwd())
        if folder in excluded or not os.path.isdir(folder):
            continue
        for key, dist in dist_folders(folder, _SUFFIXES).items():
            seen.setdefault(key, dist.version)
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


def allowlist_constraints(
    entries: Iterable[Entry], current: Sequence[Entry], core: Sequence[str]
) -> list[str]:
    """The allowlist's own pins for the other entries, so a dependency that is
    also allow-listed resolves to the version the allowlist names.

    Distributions the core environment has keep the core's pin (the core
    copy is what gets imported anyway); extras and markers are dropped, as
    constraint files require.
    """
    skip = {line.partition("==")[0] for line in core} | {d for e in current for d in e.dists}
    lines: dict[str, str] = {}
    for entry in entries:
        for name, specifier in entry.pins if entry.active else ():
            if name not in skip:
                lines.setdefault(name, f"{name}{specifier}")
    return sorted(lines.values())


def write_constraints(plan: Plan, entries: Sequence[Entry], path: str) -> list[str]:
    """Write the --constraint file for installing `entries`: the core versions
    (cached) without the entries' own distributions, then the allowlist's
    pins. Returns the core lines."""
    own = {d for e in entries for d in e.dists}
    core = [line for line in cached_core(plan) if line.partition("==")[0] not in own]
    others = allowlist_constraints(plan.entries.values(), entries, core)
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(core + others) + "\n")
    return core


def cached_core(plan: Plan) -> list[str]:
    """The core versions as constraint lines. Reading them needs `packaging`
    (~12 ms); they are cached in the target, keyed by the core folders'
    mtimes, so a later install waits for the installer alone."""
    target = plan.target
    stamps = []
    for folder in (p for p in sys.path if p and p != target and p not in plan.pth_paths):
        try:
            stamps.append((folder, os.stat(folder).st_mtime_ns))
        except OSError:
            stamps.append((folder, -1))
    key = "# lazy-import-hook core versions " + repr((sys.executable, stamps))
    cache = meta(target, "core-constraints.txt")
    text = read_trusted(cache)
    if text is not None and text.partition("\n")[0] == key:
        # Only lines a constraint may hold: pip obeys option lines in a constraints file.
        lines = text.partition("\n")[2].split()
        if all(map(pinned_line, lines)):
            return lines
    core = core_constraints([target, *plan.pth_paths], ())
    if os.path.isdir(os.path.dirname(cache)):  # `lock` may run before any install made the target
        atomic_write(cache, "\n".join([key, *core]) + "\n")
    return core


def pinned_line(line: str) -> bool:
    """`canonical-name==version` and nothing else."""
    name, sep, version = line.partition("==")
    return (
        bool(sep and name and version)
        and name[0].isalnum()
        and not name.strip("abcdefghijklmnopqrstuvwxyz0123456789-")
        and all(c.isalnum() or c in ".+!_" for c in version)
    )
