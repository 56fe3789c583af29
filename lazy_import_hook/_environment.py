"""The application's own environment: what it has installed, as constraints.

Every install runs with the core environment's versions as constraints, so
nothing in the target needs another version of a package the application
already imports (the core copy is what gets imported anyway), plus the
allowlist's own pins for the other entries.
"""

from __future__ import annotations

import os
import sys

from ._files import atomic_write, canonical_name, dist_folders
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
    skip = {canonical_name(d) for d in exclude_dists}
    return pin_lines(core_distributions(exclude_paths), skip)


def pin_lines(versions: dict[str, str], skip: Iterable[str] = ()) -> list[str]:
    """`name==version` lines for the versions an index can have, sorted."""
    skip = set(skip)
    return [f"{key}=={version}" for key, version in sorted(versions.items())
            if key not in skip and _public(version)]  # fmt: skip


def _public(version: str) -> bool:
    """A valid PEP 440 version without a local part (a local build, +cpu, is
    on no index). Most are plain releases (1.26.4): no `packaging` for those."""
    parts = version.split(".")
    if all(part.isdigit() and part.isascii() for part in parts):
        return True
    from packaging.version import InvalidVersion, Version

    try:
        return Version(version).local is None
    except InvalidVersion:
        return False


def layer_versions(plan: Plan) -> dict[str, tuple[str, str]]:
    """Canonical name -> (version, layer) of what the read-only layers hold
    (the first layer that has it, as for imports)."""
    seen: dict[str, tuple[str, str]] = {}
    for layer in plan.layers:
        for key, dist in dist_folders(layer.folder).items():
            seen.setdefault(key, (dist.version, layer.folder))
    return seen


def layer_constraints(plan: Plan, core: Sequence[str]) -> list[str]:
    """What the read-only layers hold, as constraints: they come before the
    target on sys.path, so their copy is what gets imported, and an install
    must fit it as it fits the core environment. The allowlist's own
    distributions are left to their pins: a stale copy in a layer is hidden."""
    skip = {line.partition("==")[0] for line in core}
    skip.update(d for e in plan.entries.values() if e.active for d in e.dists)
    return pin_lines({key: version for key, (version, _) in layer_versions(plan).items()}, skip)


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
    (cached) without the entries' own distributions, then what the read-only
    layers hold, then the allowlist's pins. Returns the core and layer lines."""
    own = {d for e in entries for d in e.dists}
    core = [line for line in cached_core(plan) if line.partition("==")[0] not in own]
    core += layer_constraints(plan, core)
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
    ours = plan.paths()
    for folder in (p for p in sys.path if p and p not in ours):
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
    core = core_constraints(ours, ())
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
