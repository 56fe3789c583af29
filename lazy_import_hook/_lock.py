"""One lock per target, across threads (an RLock) and processes (a file lock).

The cross-process lock is `filelock` on `<target>/.lazy-import-hook.lock`.
Importing filelock costs 25-35 ms in a bare interpreter, and a cold install
would pay it before the installer may start. So the uncontended case, where
nobody else holds the lock and nothing has to wait, tries one non-blocking
`flock` on that same file first: the very call filelock's UnixFileLock makes,
on the very file, so the two exclude each other (filelock leaves the file in
place on release, so both always lock the same inode). Everything that is
hard about file locks stays with filelock: waiting, a file system without
flock (filelock falls back to a soft lock), Windows, an odd lock file. When
the fast attempt does not simply win, filelock is imported and takes over;
that process is about to wait for another one anyway.

Re-entrant in one thread: the file lock is taken by the outermost holder only
(a second flock from this process would wait for itself). The lock file sits
at the top of the target, outside the folders an ABI wipe removes, so a wipe
never pulls it from under a waiting process.
"""

from __future__ import annotations

import os
import sys
import threading

from ._target import LOCK

TYPE_CHECKING = False
if TYPE_CHECKING:
    from filelock import BaseFileLock


def _try_flock(path: str) -> int | None:
    """An fd holding an exclusive flock on `path`, or None: contended, no
    flock here, or anything unusual about the file (filelock decides then)."""
    if sys.platform == "win32":
        return None
    import fcntl  # builtin on POSIX: no measurable import

    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags, 0o644)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        # Locked a file that is still the one at `path` (not unlinked meanwhile).
        if os.path.samestat(os.fstat(fd), os.stat(path, follow_symlinks=False)):
            return fd
    except OSError:
        pass
    os.close(fd)
    return None


class TargetLock:
    def __init__(self, target: str) -> None:
        os.makedirs(target, exist_ok=True)
        self.path = os.path.join(target, LOCK)
        self._thread_lock = threading.RLock()
        self._depth = 0  # changed only while holding _thread_lock
        self._fd: int | None = None  # held by the fast path
        self._file_lock: BaseFileLock | None = None  # held through filelock

    def __enter__(self) -> TargetLock:
        self._thread_lock.acquire()
        try:
            if self._depth == 0:
                self._fd = _try_flock(self.path)
                if self._fd is None:
                    self._filelock().acquire()
        except BaseException:
            self._thread_lock.release()
            raise
        self._depth += 1
        return self

    def __exit__(self, *exc: object) -> None:
        self._depth -= 1
        try:
            if self._depth == 0:
                if self._fd is not None:
                    import fcntl

                    fd, self._fd = self._fd, None
                    try:  # unlock first: a forked child may share the descriptor
                        fcntl.flock(fd, fcntl.LOCK_UN)
                    finally:
                        os.close(fd)
                else:
                    self._filelock().release()
        finally:
            self._thread_lock.release()

    def _filelock(self) -> BaseFileLock:
        if self._file_lock is None:
            from filelock import FileLock

            self._file_lock = FileLock(self.path, thread_local=False)
        return self._file_lock


_locks: dict[str, TargetLock] = {}
_locks_guard = threading.Lock()


def lock(target: str) -> TargetLock:
    """The one TargetLock of this process for `target`."""
    with _locks_guard:
        if target not in _locks:
            _locks[target] = TargetLock(target)
        return _locks[target]
