"""Failed installs remembered in the target, so a fleet of processes does not
hammer a broken index: for `retry-after` seconds after a failure, other
processes raise the same error instead of running the installer again."""

from __future__ import annotations

import os
import time

from ._errors import InstallerFailedError
from ._files import atomic_write, remove_quietly
from ._target import meta

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ._plan import Entry

FAILED = "failed"  # folder in the target's meta folder: one file per failed import name
_SEP = "\x1f"  # never inside a validated requirement: control characters are refused


def _path(target: str, name: str) -> str:
    return meta(target, FAILED, name)


def remember(target: str, entry: Entry, message: str) -> None:
    try:
        os.makedirs(meta(target, FAILED), exist_ok=True)
        atomic_write(_path(target, entry.import_name), _SEP.join(entry.requirements) + "\n" + message)
    except OSError:
        pass


def forget(target: str, name: str) -> None:
    remove_quietly(_path(target, name))


def check(target: str, entry: Entry, retry_after: float, command: str, since: float) -> None:
    """Raise the recorded failure if it is recent; `since`: failures recorded
    before this time are not a reason to wait (importlib.invalidate_caches())."""
    name = entry.import_name
    path = _path(target, name)
    try:
        when = os.stat(path).st_mtime
        if when <= since:
            return
        age = time.time() - when
        with open(path, encoding="utf-8") as f:
            reqs, _, message = f.read().partition("\n")
    except (OSError, UnicodeDecodeError):
        return
    if reqs.split(_SEP) != list(entry.requirements) or age >= retry_after:
        return
    raise InstallerFailedError(
        f"installing {entry.what} for 'import {name}' failed {age:.0f} s "
        f"ago (in this or another process); not retrying until {retry_after:g} s have passed "
        "(setting 'retry-after'), or run: lazy-import-hook prefetch " + name
        + "\nThe earlier failure was:\n" + message,
        name=name,
        command=command,
    )
