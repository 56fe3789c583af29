"""Getting the target ready at startup: adopt a folder, wipe another
Python's store, stamp it for this one."""

from __future__ import annotations

import os

from . import _target
from ._errors import ConfigError, warn
from ._lock import lock


def prepare(target: str, *, enabled: bool) -> bool:
    """Create the target, wipe it if built for another ABI, stamp it. Returns
    whether it holds another Python's store that stays (installs disabled:
    never wipe then; serve only what needs no compiled code).

    A folder the hook never managed is adopted only when everything in it
    belongs to an installed distribution: a wipe must never take someone's
    files with it."""
    if not os.path.isdir(_target.meta(target)) and _target.read_stamp(target) is None:
        foreign = _target.foreign_entries(target)
        if foreign:
            raise ConfigError(
                f"target {target} already holds files no installed distribution owns "
                f"({', '.join(foreign[:5])}{', ...' if len(foreign) > 5 else ''}); "
                "point the target at a new or empty folder"
            )
    state = _target.stamp_state(target)
    if state == _target.FOREIGN and not enabled:
        warn(
            f"the target {target} was built for another Python ({_target.read_stamp(target)}); installs "
            "are disabled, so it is not wiped, and only its pure-Python modules are served. Run "
            "`lazy-import-hook prefetch` with installs enabled to rebuild it for this Python",
            RuntimeWarning,
        )
        return True
    os.makedirs(_target.meta(target), exist_ok=True)  # before the mtime is taken
    if state != _target.OWN:
        _wipe_or_stamp(target)
    return False


def _wipe_or_stamp(target: str) -> None:
    with lock(target):
        state = _target.stamp_state(target)
        if state == _target.FOREIGN:
            removed, left = _target.wipe(target)
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
