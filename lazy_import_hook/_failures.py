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
    from collections.abc import Callable

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


def _read(target: str, entry: Entry, retry_after: float, since: float) -> tuple[float, str] | None:
    """(age in seconds, message) of a failure of these requirements recorded
    after `since` and less than `retry_after` ago. A record from the future
    (clock skew, NFS), one that cannot be read, or one of other requirements
    is no reason to wait: the wait is never longer than `retry-after`."""
    path = _path(target, entry.import_name)
    try:
        when = os.stat(path).st_mtime
        age = time.time() - when
        if when <= since or not 0 <= age < retry_after:
            return None
        with open(path, encoding="utf-8") as f:
            reqs, _, message = f.read().partition("\n")
    except (OSError, UnicodeDecodeError):
        return None
    return (age, message) if reqs.split(_SEP) == list(entry.requirements) else None


def recent(target: str, entry: Entry, retry_after: float, since: float) -> bool:
    return _read(target, entry, retry_after, since) is not None


def check(target: str, entry: Entry, retry_after: float, command: Callable[[], str], since: float) -> None:
    """Raise the recorded failure if it is recent; `since`: failures recorded
    before this time are not a reason to wait (importlib.invalidate_caches());
    `command()`: what to run by hand, asked only then."""
    found = _read(target, entry, retry_after, since)
    if found is None:
        return
    age, message = found
    name = entry.import_name
    raise InstallerFailedError(
        f"installing {entry.what} for 'import {name}' failed {age:.0f} s "
        f"ago (in this or another process); not retrying until {retry_after:g} s have passed "
        "(setting 'retry-after'), or run: lazy-import-hook prefetch " + name
        + "\nThe earlier failure was:\n" + message,
        name=name,
        command=command(),
    )
