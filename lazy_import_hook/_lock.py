"""One lock per target, across threads (an RLock) and processes (a file lock).

The cross-process lock is `filelock` on `<target>/.lazy-import-hook.lock`.
Importing filelock costs 25-35 ms in a bare interpreter, and a cold install
would pay it before the installer may start. So the uncontended case, where
nobody else holds the lock and nothing has to wait, tries one non-blocking
`flock` on that same file first: the very call filelock's UnixFileLock makes,
on the very file, so the two exclude each other (filelock leaves the file in
place on release, so both always lock the same inode). Everything that is
hard about file locks stays with filelock: waiting, a file system without
flock (filelock 4 falls back to a soft lock, 3.x refuses), Windows, an odd
lock file (whatever the installed filelock does with it, the hook does). When
the fast attempt does not simply win, filelock is imported and takes over;
that process is about to wait for another one anyway.

Re-entrant in one thread: the file lock is taken by the outermost holder only
(a second flock from this process would wait for itself). The lock file sits
at the top of the target, outside the folders an ABI wipe removes, so a wipe
never pulls it from under a waiting process.
"""

from __future__ import annotations

import _thread
import errno
import os
import sys

from ._files import make_folders
from ._target import LOCK

LOCK_MODE = 0o600  # nobody else may open it: an open descriptor is enough to hold a flock

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from filelock import BaseFileLock


def _try_flock(path: str, held: list[int]) -> bool:
    """Try for an exclusive flock on `path` without waiting; on success the fd
    is in `held`. False when contended, when this file system has no flock,
    or when anything about the file is unusual: filelock decides then.

    Opened as filelock opens it (no symlink, no blocking on a lease), with
    mode LOCK_MODE: flock needs only a descriptor, even a read-only one, so a
    lock file others can open is a lock others can hold forever. A lock file
    this attempt created is removed again if it cannot be locked: filelock 4,
    finding no flock, falls back to a soft lock that would take a leftover
    empty file for a live holder.
    """
    if sys.platform == "win32":
        return False
    import fcntl  # builtin on POSIX: no measurable import

    flags = os.O_RDWR | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0) | os.O_NONBLOCK
    created = False
    try:
        try:
            held.append(os.open(path, flags))
        except FileNotFoundError:
            held.append(os.open(path, flags | os.O_CREAT | os.O_EXCL, LOCK_MODE))
            created = True
        _private(held[0])
        fcntl.flock(held[0], fcntl.LOCK_EX | fcntl.LOCK_NB)
        # Locked the file that is still at `path` (not one unlinked meanwhile).
        if os.path.samestat(os.fstat(held[0]), os.stat(path, follow_symlinks=False)):
            return True
    except OSError as e:
        if created and e.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            _unlink(path)  # ours, never locked: nobody else can be using it
    except BaseException:  # e.g. Ctrl-C: never leave a locked fd behind
        if held:
            os.close(held.pop())
        raise
    if held:
        os.close(held.pop())
    return False


def _private(fd: int) -> None:
    """A lock file of ours that others may open (made before LOCK_MODE, or
    under a lax umask) becomes ours alone, as filelock does with its mode."""
    st = os.fstat(fd)
    if st.st_mode & 0o077 and st.st_uid == os.geteuid():
        os.fchmod(fd, LOCK_MODE)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


class TargetLock:
    def __init__(self, target: str) -> None:
        make_folders(target)
        self.path = os.path.join(target, LOCK)
        self._thread_lock = _thread.RLock()
        self._depth = 0  # changed only while holding _thread_lock
        self._held: list[int] = []  # the fd of the fast path, while it holds the lock
        self._owner = 0  # the pid that took the fast path's flock
        self._file_lock: BaseFileLock | None = None  # held through filelock

    def __enter__(self) -> TargetLock:
        return self.acquire()

    def acquire(self, on_wait: Callable[[], None] | None = None) -> TargetLock:
        """Take the lock (re-entrant); `on_wait` is called once, before waiting
        for another process that holds it. Release with __exit__."""
        self._thread_lock.acquire()
        try:
            if self._depth == 0:
                self._owner = os.getpid()
                if not _try_flock(self.path, self._held):
                    if on_wait is not None:
                        on_wait()
                    self._filelock().acquire()
        except BaseException:
            if self._depth == 0 and self._held:
                self._release_fast()
            self._thread_lock.release()
            raise
        self._depth += 1
        return self

    def __exit__(self, *exc: object) -> None:
        self._depth -= 1
        try:
            if self._depth == 0:
                if self._held:
                    self._release_fast()
                else:
                    self._filelock().release()
        finally:
            self._thread_lock.release()

    def _release_fast(self) -> None:
        import fcntl

        fd = self._held.pop()
        try:
            # A forked child shares the descriptor's lock with its parent: only
            # the process that took it unlocks; a child just closes its copy.
            if self._owner == os.getpid():
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def forget_after_fork(self) -> None:
        """In a forked child: the lock is not ours. The thread that held it is
        not in the child, and its descriptors would keep the parent's lock
        held after the parent is gone, so they are closed (never unlocked:
        the lock belongs to the parent)."""
        self._thread_lock = _thread.RLock()
        self._depth = 0
        while self._held:
            _close(self._held.pop())
        if self._file_lock is not None:
            context = getattr(self._file_lock, "_context", self._file_lock)
            fd = getattr(context, "lock_file_fd", getattr(context, "_lock_file_fd", None))
            if isinstance(fd, int):
                _close(fd)
            self._file_lock = None

    def _filelock(self) -> BaseFileLock:
        if self._file_lock is None:
            from filelock import FileLock

            self._file_lock = FileLock(self.path, mode=LOCK_MODE, thread_local=False)
        return self._file_lock


class _Registry:
    """The one TargetLock per target of this process."""

    def __init__(self) -> None:
        self.locks: dict[str, TargetLock] = {}
        self.guard = _thread.allocate_lock()

    def after_fork_in_child(self) -> None:
        self.guard = _thread.allocate_lock()  # another thread may have held it at the fork
        for held in self.locks.values():
            held.forget_after_fork()


_registry = _Registry()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_registry.after_fork_in_child)


def _close(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


def lock(target: str) -> TargetLock:
    """The one TargetLock of this process for `target`."""
    with _registry.guard:
        if target not in _registry.locks:
            _registry.locks[target] = TargetLock(target)
        return _registry.locks[target]
