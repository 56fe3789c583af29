"""What `lazy-import-hook prune` removes, and removing it safely."""

from __future__ import annotations

import os
import shutil

from . import _plan, _target
from ._files import OWN_FOLDER, dist_folders, make_folders, record_paths

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

    from packaging.requirements import Requirement

    from ._plan import Plan
    from ._records import Recorded


def _requires(target: str, info: str) -> list[Requirement]:
    from email.parser import HeaderParser

    from packaging.requirements import InvalidRequirement, Requirement

    try:
        with open(os.path.join(target, info, "METADATA"), encoding="utf-8") as f:
            headers = HeaderParser().parse(f)
    except OSError:
        return []
    reqs = []
    for text in headers.get_all("Requires-Dist") or []:
        try:
            reqs.append(Requirement(text))
        except InvalidRequirement:
            continue
    return reqs


def refusal(plan: Plan, *, dry_run: bool) -> str:
    """Why this target must not be pruned ("" if it may): one that is not
    safe to trust, or read-only (a dry run only reads), or that holds
    another Python's store (whose next start or prefetch replaces it all),
    or a folder the hook never stamped (someone's site-packages)."""
    problem = plan.problem
    if problem is not None and (problem.unsafe or not dry_run):
        return problem.message
    state = _target.stamp_state(plan.target)
    if state == _target.FOREIGN:
        return (
            f"the target {plan.target} was built for another Python ({_target.read_stamp(plan.target)}): "
            "`lazy-import-hook prefetch`, or the application's next start with installs enabled, "
            "replaces all of it"
        )
    if state == _target.NONE and not os.path.isdir(_target.meta(plan.target)):
        return f"{plan.target} has no {_target.STAMP} stamp: no lazy-import-hook installed into it"
    return ""


def plan_removals(plan: Plan, others: Sequence[Plan] = ()) -> list[tuple[str, str]]:
    """(dist-info folder, why) for every distribution the target can do without.

    Needed: what the active allowlist entries of `plan` and `others` (the
    applications using the target now) require, with their extras, and
    recursively what those require (markers evaluated). Not needed: anything
    else, and any copy of a distribution that the core environment has (the
    core copy is what gets imported anyway).
    """
    from ._environment import core_distributions

    target = plan.target
    infos = {key: dist.info for key, dist in dist_folders(target).items()}
    core = core_distributions(plan.paths())  # a layer's copy is no reason to remove the target's
    needed = set().union(*(_needed(p, infos, core) for p in (plan, *others)))
    removals = []
    for key, info in sorted(infos.items()):
        if key in core:
            removals.append((info, f"shadowed by the core environment's {key} {core[key]}"))
        elif key not in needed:
            removals.append((info, "no allowlist entry needs it"))
    return removals


def _needed(plan: Plan, infos: dict[str, str], core: dict[str, str]) -> set[str]:
    """What the active entries require, with their extras, recursively."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    needed: set[str] = set()
    queue: list[tuple[str, frozenset[str]]] = [
        (str(canonicalize_name(Requirement(text).name)), frozenset(Requirement(text).extras))
        for entry in plan.entries.values()
        if entry.active
        for text in entry.requirements
    ]
    seen: set[tuple[str, frozenset[str]]] = set()
    while queue:
        key, extras = queue.pop()
        if (key, extras) in seen or key in core or key not in infos:
            continue
        seen.add((key, extras))
        needed.add(key)
        for req in _requires(plan.target, infos[key]):
            wanted = req.marker is None or any(
                req.marker.evaluate({"extra": extra}) for extra in (extras or {""})
            )
            if wanted:
                queue.append((str(canonicalize_name(req.name)), frozenset(req.extras)))
    return needed


class Pruned:
    """What prune decided: the removals (dist-info, why), whose needs were
    kept (the other applications using the target), and the applications
    in use whose plan could not be read (nothing is removed then)."""

    __slots__ = ("kept_for", "removals", "unread")

    def __init__(self, removals: list[tuple[str, str]], kept_for: list[str], unread: list[str]) -> None:
        self.removals = removals
        self.kept_for = kept_for
        self.unread = unread


def prune(plan: Plan, *, dry_run: bool, every_record: bool = False) -> Pruned:
    """Decide and remove under one hold of the target lock, so an application
    that starts meanwhile is counted (a dry run only reads, and takes none:
    it works on a read-only target too)."""
    from ._watch import Locked

    if dry_run:
        return _decide(plan, every_record)
    with Locked(plan.target):
        pruned = _decide(plan, every_record)
        if not pruned.unread:
            _remove(plan.target, [info for info, _ in pruned.removals])
    return pruned


def _decide(plan: Plan, every_record: bool) -> Pruned:
    from ._records import record_id, recorded, unread_in_use

    mine = plan.record_id or record_id(plan)
    found = recorded(plan.target)
    others = [r for r in found if (r.live or every_record) and r.record_id != mine]
    unread = unread_in_use(plan.target, {mine, *(r.record_id for r in found)})
    removals = plan_removals(plan, [r.plan for r in others])
    return Pruned(removals, [_kept_for(plan.target, r) for r in others], unread)


def _kept_for(target: str, other: Recorded) -> str:
    """`<application> needs`, and for one not running, how to let its packages go."""
    if other.live:
        return f"{other.describe()} needs"
    record = _plan.record_paths(target, other.record_id)[0]
    return f"{other.describe()} needs (not running; if it never runs again, delete {record})"


def _remove(target: str, infos: Sequence[str]) -> None:
    """The dist-info first (the target stops claiming the distribution), then
    the files no remaining distribution also lists, then emptied folders."""
    import uuid

    from ._staging import remove_listed

    kept = {
        path
        for name in os.listdir(target)
        if name.endswith(".dist-info") and name not in infos
        for path in record_paths(target, name)
    }
    trash = _target.meta(target, "trash", uuid.uuid4().hex[:12])
    make_folders(os.path.dirname(trash))
    os.mkdir(trash, OWN_FOLDER)
    for info in infos:
        paths = record_paths(target, info)
        os.rename(os.path.join(target, info), os.path.join(trash, info))
        gone = [rel for rel in paths if rel not in kept and not rel.startswith(info)]
        remove_listed(target, gone, lambda link: any(rel.startswith(link + os.sep) for rel in kept))
    shutil.rmtree(trash, ignore_errors=True)
