"""What a folder (the target, a read-only layer) holds against the pins:
which allow-listed modules it may serve and which are stale.

Runs after every install and at a slow start, so it needs no `packaging`
(whose import, with `packaging.tags` and `logging` behind it, costs tens of
milliseconds) when a version is literally the one pinned, as it is after an
install; any other case asks `packaging`.
"""

from __future__ import annotations

from . import _distributions, _files, _pth
from ._plan import Layer, layer_stamps

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from ._plan import Entry, Plan


def installed_matches(requirement: str, version: str) -> bool:
    """Whether `version` (from the target) satisfies `requirement`."""
    if version and _exact_pin(requirement) == version:
        return True  # the same text is the same PEP 440 version
    from packaging.requirements import Requirement

    return Requirement(requirement).specifier.contains(version, prereleases=True)


def _exact_pin(requirement: str) -> str | None:
    """V of a plain `name==V` (no extras, marker, URL, list or wildcard), else None."""
    _, sep, version = requirement.partition("==")
    if not sep or version.startswith("=") or any(c in requirement for c in "[;@,* !<>~"):
        return None
    return version.strip() or None


def stale_versions(entry: Entry, versions: Mapping[str, str]) -> list[str]:
    """`dist version` of each of the entry's distributions that `versions`
    (canonical name -> version, e.g. of the target) holds at a version its
    requirement does not allow."""
    return [
        f"{dist} {versions[dist]}"
        for req, dist in entry.wanted()
        if dist in versions and not installed_matches(req, versions[dist])
    ]


def matching_infos(target: str, entry: Entry) -> tuple[str, ...] | None:
    """The dist-info folders of the entry's distributions in the target, if
    none of them is at a version its requirement does not allow; None if
    one is, or if the module is there without any of them (an interrupted
    upgrade, the old dist-info goes first, or a hand-made copy: never serve
    it as if it were the pinned version)."""
    dists = _files.dist_folders(target)
    have = {d: dists[d] for d in entry.dists if d in dists}
    if not have:
        return None if _distributions.on_disk(target, entry.import_name) else ()
    if stale_versions(entry, {d: f.version for d, f in have.items()}):
        return None
    return tuple(f.info for f in have.values())


def scan(plan: Plan) -> list[str]:
    """Record in the plan what the target holds that startup must know about:
    allow-listed modules present at a version the pin no longer matches
    (hidden until reinstalled), the dist-info folders found to match (a
    later import only checks they are still there), and the .pth path lines.
    Returns the .pth path lines refused (see _pth.read_pth)."""
    plan.hidden, plan.verified = _holdings(plan.target, plan.entries.values())
    paths, _, refused = _pth.read_pth(plan.target, outside=plan.settings.pth_imports)
    plan.pth_paths = tuple(paths)
    return refused


def _holdings(folder: str, entries: Iterable[Entry]) -> tuple[tuple[str, ...], dict[str, tuple[str, ...]]]:
    """(import names `folder` holds at a version their pins do not allow,
    import name -> the dist-info folders found to match) of the active entries."""
    hidden = []
    verified: dict[str, tuple[str, ...]] = {}
    for entry in entries:
        if not entry.active:
            continue
        infos = matching_infos(folder, entry)
        if infos is None:
            hidden.append(entry.import_name)
        elif infos:
            verified[entry.import_name] = infos
    return tuple(sorted(hidden)), verified


def scan_layers(plan: Plan) -> list[str]:
    """Check each read-only layer (see _layers) and record in the plan the
    ones in use, what each holds as `scan` does for the target, and why any
    other is left out (`plan.layer_problems`). Returns the .pth path lines
    refused, as `scan` does."""
    from ._layers import in_stack, unusable

    # Before looking, so a change meanwhile invalidates the cache; of every
    # folder named, so a warm start needs no realpath to tell which are used.
    plan.layer_stamps = layer_stamps(plan.settings.read_only_targets)
    folders = in_stack(plan.target, plan.settings.read_only_targets)
    layers, problems, refused = [], [], []
    for folder in folders:
        why = unusable(folder)
        if why:
            problems.append(f"the read-only layer {folder} is not used: {why}")
            continue
        paths, _, dropped = _pth.read_pth(folder, outside=plan.settings.pth_imports)
        refused += [f"{line} in the read-only layer {folder}" for line in dropped]
        layers.append(Layer(folder, *_holdings(folder, plan.entries.values()), paths))
    plan.layers, plan.layer_problems = tuple(layers), tuple(problems)
    return refused
