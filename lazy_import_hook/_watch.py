"""What a person waiting for an install sees: a line when it starts and when
it ends, a line whenever the installer has said nothing for `stall-after`
seconds (what, for how long, from which index, the installer's last words,
how to stop it), and at a terminal a live progress line after two seconds.
Every line also goes to the `lazy_import_hook` logger; nothing but the live
line carries control characters."""

from __future__ import annotations

import os
import sys
import time

from ._pipconf import redacted
from ._process import Watcher

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

_LIVE_AFTER = 2.0  # seconds before a terminal gets the live progress line


def notice(message: str) -> None:
    """One line on stderr, and the same through logging."""
    _clear_live()
    print(f"lazy-import-hook: {message}", file=sys.stderr, flush=True)
    # Not imported means not configured: the record would go nowhere (no
    # handler; the last-resort one takes warnings only). Importing it for
    # that costs ~20 ms at an install. Another thread may be importing it
    # right now (filelock imports it when a lock is contended): a module
    # not run to its end yet has no getLogger, and gets no record.
    get_logger = getattr(sys.modules.get("logging"), "getLogger", None)
    if get_logger is not None:
        get_logger("lazy_import_hook").info(message)


_LIVE: list[bool] = [False]  # whether a live line is on the terminal now


def _terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def _clear_live() -> None:
    if _LIVE[0]:
        sys.stderr.write("\r\x1b[K")
        _LIVE[0] = False


class InstallWatcher(Watcher):
    """Reports one installer run of `subject` ("isodate==0.7.2 for 'import isodate'")."""

    def __init__(
        self, subject: str, installer: str, index: str, *, stream: bool, on_start: Callable[[], None]
    ) -> None:
        self.subject = subject
        self.installer = installer
        self.index = index
        self.stream = stream  # verbose: the installer's own lines go to stderr
        self.on_start = on_start  # runs while the installer works
        self.pid = 0
        self.started_at = time.monotonic()
        self.terminal = _terminal()

    def started(self, pid: int) -> None:
        self.pid = pid
        self.on_start()

    def output(self, line: str) -> None:
        if self.stream:
            _clear_live()
            sys.stderr.write(f"  {self.installer}: {redacted(line)}")

    def silent(self, seconds: float, last_line: str) -> None:
        elapsed = time.monotonic() - self.started_at
        last_line = redacted(last_line.strip())
        said = f"its last line: {last_line!r}" if last_line else "it has printed nothing yet"
        notice(
            f"still installing {self.subject} with {self.installer} after {elapsed:.0f} s, silent for "
            f"{seconds:.0f} s; {said}; index: {self.index}. To stop it: Ctrl-C, or kill {self.pid}; "
            "'timeout' bounds it (LAZY_IMPORT_HOOK_TIMEOUT)"
        )

    def tick(self, elapsed: float, last_line: str) -> None:
        if not self.terminal or elapsed < _LIVE_AFTER:
            return
        text = f"lazy-import-hook: installing {self.subject} ({elapsed:.0f} s) {redacted(last_line.strip())}"
        sys.stderr.write("\r\x1b[K" + text[: _columns() - 1])  # a wrapped line is not cleared by \r
        sys.stderr.flush()
        _LIVE[0] = True

    def finished(self) -> None:
        _clear_live()


def _columns() -> int:
    """The terminal's width (os's, not shutil's: that pulls in bz2 and lzma)."""
    try:
        return max(20, os.get_terminal_size(sys.stderr.fileno()).columns)
    except (OSError, ValueError, AttributeError):
        return 80


class Locked:
    """`with Locked(target):` the target's lock, held for the block; a wait
    for another process is said once (say_waiting)."""

    def __init__(self, target: str) -> None:
        self.target = target

    def __enter__(self) -> None:
        from ._lock import lock

        self.held = lock(self.target).acquire(on_wait=lambda: say_waiting(self.target))

    def __exit__(self, *exc: object) -> None:
        self.held.__exit__()


def say_waiting(target: str) -> None:
    """Said once by a process about to wait for the target's lock: who
    installs what since when, from the marker the holder wrote, or that it
    records no install (a prune, a wipe, a stuck process; or one that took
    the lock a moment ago and has not written its marker yet)."""
    from ._target import INSTALLING, LOCK, meta, read_trusted

    text = read_trusted(meta(target, INSTALLING)) or ""
    pid, since, subject = [*text.split("\n", 2), "", ""][:3]
    try:
        when = float(since)
        if not 0 < when < 1e11:  # inf, nan, nonsense: time.localtime would raise
            raise ValueError(since)
        ago = f"{time.strftime('%H:%M:%S', time.localtime(when))} ({time.time() - when:.0f} s ago)"
        notice(f"waiting for process {int(pid)}, installing {subject} into {target} since {ago} ...")
    except (ValueError, OverflowError, OSError):  # gone, cut short, another format: none recorded
        lock = os.path.join(target, LOCK)
        notice(f"waiting for the process holding {lock}, which records no install (`fuser -v {lock}`) ...")
