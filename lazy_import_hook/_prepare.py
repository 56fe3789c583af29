"""Getting the target ready at startup: adopt a folder, wipe another
Python's store, stamp it for this one."""

from __future__ import annotations

import os

from . import _target
from ._distributions import foreign_entries
from ._errors import ConfigError, warn
from ._files import OWN_FOLDER, make_folders

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable


def prepare(target: str, *, enabled: bool, users: Callable[[], list[str]] = list) -> bool:
    """Create the target, wipe it if built for another ABI, stamp it. Returns
    whether it holds another Python's store that stays (installs disabled,
    or `users()` names a running application of that Python: never wipe
    then; serve only what needs no compiled code).

    A folder the hook never managed is adopted only when everything in it
    belongs to an installed distribution: a wipe must never take someone's
    files with it."""
    if not os.path.isdir(_target.meta(target)) and _target.read_stamp(target) is None:
        foreign = foreign_entries(target)
        if foreign:
            raise ConfigError(
                f"target {target} already holds files no installed distribution owns "
                f"({', '.join(foreign[:5])}{', ...' if len(foreign) > 5 else ''}); "
                "point the target at a new or empty folder"
            )
    state = _target.stamp_state(target)
    running = users() if state == _target.FOREIGN and enabled else []
    if state == _target.FOREIGN and (running or not enabled):
        warn(_kept_foreign(target, running), RuntimeWarning)
        return True
    make_folders(_target.meta(target))  # before the mtime is taken
    if state != _target.OWN:
        _wipe_or_stamp(target)
    return False


def _kept_foreign(target: str, running: list[str]) -> str:
    built = f"the target {target} was built for another Python ({_target.read_stamp(target)})"
    if running:
        return (
            f"{built} that {running[0]} runs on now, so it is not wiped under it: only its pure-Python "
            "modules are served here, and installs into it are refused until that application stops "
            "(or give each Python a target of its own)"
        )
    return (
        f"{built}; installs are disabled, so it is not wiped, and only its pure-Python modules are "
        "served. Run `lazy-import-hook prefetch` with installs enabled to rebuild it for this Python"
    )


def _wipe_or_stamp(target: str) -> None:
    from ._watch import Locked  # a new target's first start only

    with Locked(target):
        state = _target.stamp_state(target)
        if state == _target.FOREIGN:
            removed, left = wipe(target)
            kept = f"; left in place, no distribution owns them: {', '.join(left)}" if left else ""
            warn(
                f"the target {target} was built for another Python ({len(removed)} entries "
                f"removed){kept}; packages will be installed again",
                RuntimeWarning,
            )
        elif state == _target.DAMAGED:
            warn(f"the ABI stamp of {target} was damaged ({_target.read_stamp(target)!r}); stamped again")
            _target.write_stamp(target)
        elif state == _target.NONE:
            _target.write_stamp(target)


def wipe(target: str) -> tuple[list[str], list[str]]:
    """Empty a target built for another ABI of what the hook installed there:
    every top-level entry a RECORD owns (and compiled files, scripts), never
    a file no distribution owns. Returns (removed, left). Call it with the
    target lock held.

    The stamp goes first and a WIPING marker stays until the end, so a crash
    at any point leaves a store that the next start wipes again, never one
    stamped valid while half-wiped. Entries are renamed into a trash folder
    (atomic each), so a concurrent reader sees every package whole or absent.
    """
    import uuid

    from ._files import atomic_write

    left = foreign_entries(target)
    make_folders(_target.meta(target))
    atomic_write(_target.meta(target, _target.WIPING), f"{os.getpid()}\n")
    try:
        os.unlink(os.path.join(target, _target.STAMP))
    except FileNotFoundError:
        pass
    trash = _target.meta(target, "trash", uuid.uuid4().hex)
    make_folders(os.path.dirname(trash))
    os.mkdir(trash, OWN_FOLDER)
    removed = []
    # The dist-info folders go last: after a crash, what is left is still
    # known to be the hook's (their RECORDs say so) and the next start wipes it.
    for name in sorted(os.listdir(target), key=lambda n: (n.endswith(".dist-info"), n)):
        if name not in _target.OURS and name not in left:
            os.rename(os.path.join(target, name), os.path.join(trash, name))
            removed.append(name)
    _empty_meta(target)
    _target.write_stamp(target)
    os.unlink(_target.meta(target, _target.WIPING))
    return removed, left


def _empty_meta(target: str) -> None:
    import shutil

    for name in os.listdir(_target.meta(target)):
        path = _target.meta(target, name)
        if name == _target.WIPING:
            continue
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            os.unlink(path)
