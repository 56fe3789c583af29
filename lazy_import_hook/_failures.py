"""Failed installs remembered in the target, so a fleet of processes does not
hammer a broken index: for `retry-after` seconds after a failure, other
processes raise the same error instead of running the installer again."""

from __future__ import annotations

import os
import time

from ._files import atomic_write, make_folders, remove_quietly
from ._target import meta

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from ._errors import LazyInstallError
    from ._plan import Entry

FAILED = "failed"  # folder in the target's meta folder: one file per failed import name
_SEP = "\x1f"  # never inside a validated requirement: control characters are refused

# A record: the requirements (_SEP-separated), then "<reason>\t<length of the
# message>", then the message and the installer's output (tail), as the
# error held them. The command to run by hand is not kept: whoever reads
# the record says what it would run.


def _path(target: str, name: str) -> str:
    return meta(target, FAILED, name)


def remember(target: str, entry: Entry, error: LazyInstallError) -> None:
    head = f"{_SEP.join(entry.requirements)}\n{error.reason}\t{len(error.message)}\n"
    try:
        make_folders(meta(target, FAILED))
        atomic_write(_path(target, entry.import_name), head + error.message + error.output)
    except OSError:
        pass


def forget(target: str, name: str) -> None:
    remove_quietly(_path(target, name))


def _read(target: str, entry: Entry, retry_after: float, since: float) -> tuple[float, str, str, str] | None:
    """(age in seconds, reason, message, installer output) of a failure of
    these requirements recorded after `since` and less than `retry_after`
    ago. A record from the future (clock skew, NFS), one that cannot be
    read, or one of other requirements is no reason to wait: the wait is
    never longer than `retry-after`."""
    path = _path(target, entry.import_name)
    try:
        when = os.stat(path).st_mtime
        age = time.time() - when
        if when <= since or not 0 <= age < retry_after:
            return None
        with open(path, encoding="utf-8") as f:
            reqs, _, rest = f.read().partition("\n")
    except (OSError, UnicodeDecodeError):
        return None
    if reqs.split(_SEP) != list(entry.requirements):
        return None
    head, _, text = rest.partition("\n")
    reason, tab, length = head.partition("\t")
    if not tab or not length.isdigit():  # another version's record: the message, whole
        return age, "", rest, ""
    return age, reason, text[: int(length)], text[int(length) :]


def recent(target: str, entry: Entry, retry_after: float, since: float) -> bool:
    return _read(target, entry, retry_after, since) is not None


def check(target: str, entry: Entry, retry_after: float, command: Callable[[], str], since: float) -> None:
    """Raise the recorded failure if it is recent, as the error it was (its
    reason, its installer output); `since`: failures recorded before this
    time are not a reason to wait (importlib.invalidate_caches());
    `command()`: what to run by hand, asked only then."""
    found = _read(target, entry, retry_after, since)
    if found is None:
        return
    age, reason, message, output = found
    name, by_hand = entry.import_name, command()
    raise _kind(reason)(
        f"installing {entry.what} for 'import {name}' failed {age:.0f} s "
        f"ago (in this or another process); not retrying until {retry_after:g} s have passed "
        f"(setting 'retry-after'), or run: {by_hand}\nThe earlier failure was:\n{message}",
        name=name,
        command=by_hand,
        output=output,
    )


def _kind(reason: str) -> type[LazyInstallError]:
    """The error class of a recorded reason (an unknown one: the installer failed)."""
    from . import _errors

    kinds = [getattr(_errors, name) for name in _errors.__all__]
    found = [k for k in kinds if isinstance(k, type) and issubclass(k, _errors.LazyInstallError)]
    return next((k for k in found if k.reason == reason), _errors.InstallerFailedError)
