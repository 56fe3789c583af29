"""Which applications share a target, with which pins (see _plan.hold).

An application about to replace a version that another *live* application
pins is stopped with `reason == "pin-conflict"` instead of flip-flopping the
shared target between the two; `status` lists every recorded plan, whether
a process still uses it, and the conflicts between them.
"""

from __future__ import annotations

import os

from . import _distributions, _plan, _target

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

    from ._plan import Entry, Plan


def record_id(plan: Plan) -> str:
    """Plans that ask for the same things share one record (and never conflict)."""
    import hashlib

    wanted = sorted((e.import_name, e.requirements, e.hashes) for e in plan.entries.values())
    return hashlib.sha256(repr((plan.target, wanted)).encode()).hexdigest()[:16]


def origin() -> str:
    """Which application this process is, as a person would recognise it."""
    import sys

    argv0 = sys.argv[0] if sys.argv and sys.argv[0] else "python"
    return f"{argv0} (in {os.getcwd()})"


class Recorded:
    """A plan recorded in the target."""

    __slots__ = ("live", "plan", "record_id")

    def __init__(self, record_id: str, plan: Plan, live: bool) -> None:
        self.record_id = record_id
        self.plan = plan
        self.live = live  # a process uses it right now

    def describe(self) -> str:
        where = self.plan.pyproject or self.plan.origin or "an application"
        return f"{where} (plan {self.record_id}{', in use' if self.live else ''})"


def recorded(target: str) -> list[Recorded]:
    """Every plan recorded in `target`, newest first."""
    found = []
    for name in _record_names(target):
        rid = name[: -len(".plan")]
        path, live = _plan.record_paths(target, rid)
        text = _target.read_trusted(path)
        loaded = _plan.loads(text, _plan.RECORD_KEY) if text else None
        if loaded is not None:
            found.append((os.stat(path).st_mtime, Recorded(rid, loaded[0], _in_use(rid, live))))
    return [r for _, r in sorted(found, key=lambda pair: -pair[0])]


def running_elsewhere(target: str) -> list[str]:
    """The applications other processes run on `target` now, as `status` names them."""
    held = _plan.held_ids()
    return [r.describe() for r in recorded(target) if r.live and r.record_id not in held]


def untrusted_records(target: str) -> list[str]:
    """Why each record `recorded` leaves out is not to be trusted (another
    user's, say): the command line names them rather than finding none."""
    folder = _target.meta(target, "plans")
    if os.path.isdir(folder) and not os.access(folder, os.R_OK | os.X_OK):
        return [f"{folder}: not readable by this user"]
    found = []
    for name in _record_names(target):
        path = os.path.join(folder, name)
        try:
            why = _problem_with(path, os.lstat(path))
        except OSError as e:
            why = str(e.strerror)
        if why:
            found.append(f"{name}: {why}")
    return found


def unread_in_use(target: str, known: Iterable[str]) -> list[str]:
    """The plans in use by a process that `recorded` left out (another
    user's, not to be trusted, or written by another version)."""
    folder = _target.meta(target, "plans")
    known = set(known)
    rids = [name[: -len(".live")] for name in _record_names(target, ".live")]
    return [rid for rid in rids if rid not in known and _in_use(rid, os.path.join(folder, f"{rid}.live"))]


def _problem_with(path: str, st: os.stat_result) -> str:
    import stat

    if not stat.S_ISREG(st.st_mode):
        return "not a regular file"
    return _target.untrusted(st, path) or ("" if os.access(path, os.R_OK) else "not readable by this user")


def _record_names(target: str, suffix: str = ".plan") -> list[str]:
    """The plans folder's files ending in `suffix` ([] if it cannot be listed)."""
    try:
        return sorted(n for n in os.listdir(_target.meta(target, "plans")) if n.endswith(suffix))
    except OSError:
        return []


def _in_use(rid: str, live: str) -> bool:
    """Whether another process holds a lock on the record's .live file. Our
    own records are ours: opening and closing their file would drop our lock."""
    if rid in _plan.held_ids():
        return True
    try:
        # Without blocking or following: a FIFO or link planted under the name must not hang or lead us.
        fd = os.open(live, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return False
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        os.lockf(fd, os.F_TEST, 0)  # from the start to the end of any file
    except OSError:
        return True
    finally:
        os.close(fd)
    return False


def conflicts(plan: Plan, entry: Entry) -> list[str]:
    """Why installing `entry` now would break another live application: it
    would replace a version that application pins and the target holds."""
    others = [r for r in recorded(plan.target) if r.live and r.record_id != plan.record_id]
    if not others:
        return []  # the usual case: no `packaging` needed
    from packaging.specifiers import SpecifierSet

    versions = _distributions.installed_versions(plan.target)
    mine = dict(entry.pins)
    found = []
    for other in others:
        for dist, specifier in (p for e in other.plan.entries.values() if e.active for p in e.pins):
            have = versions.get(dist)
            if dist not in entry.dists or have is None:
                continue
            theirs, ours = SpecifierSet(specifier), SpecifierSet(mine.get(dist, ""))
            if theirs.contains(have, prereleases=True) and not ours.contains(have, prereleases=True):
                found.append(f"{other.describe()} pins {dist}{specifier} and the target holds {dist} {have}")
    return found


def disagreements(records: list[Recorded]) -> list[str]:
    """Pairs of recorded plans that pin one distribution differently."""
    by_dist: dict[str, list[tuple[str, Recorded]]] = {}
    for record in records:
        for entry in record.plan.entries.values():
            for dist, specifier in entry.pins if entry.active else ():
                by_dist.setdefault(dist, []).append((specifier, record))
    lines = []
    for dist, pins in sorted(by_dist.items()):
        specs = {spec for spec, _ in pins}
        if len(specs) > 1:
            who = "; ".join(f"{r.describe()} wants {dist}{spec}" for spec, r in pins)
            lines.append(f"{dist}: {who}")
    return lines
