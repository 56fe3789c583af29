"""The target lock: one per target, re-entrant in a thread, exclusive across
threads and processes, and interchangeable with a plain `filelock.FileLock`
on the same file (the uncontended fast path and filelock must exclude each
other, whichever side holds the lock)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from filelock import FileLock, Timeout

from lazy_import_hook import _lock
from lazy_import_hook._target import LOCK

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="the flock fast path is POSIX-only")


def holder(path: Path, how: str, *, via_filelock: bool | None = None) -> subprocess.Popen[str]:
    """Another process that takes the lock `how` ('filelock' or 'hook'),
    prints 'held' and whether it imported filelock, and releases the lock
    when its stdin closes."""
    take = (
        f"from filelock import FileLock; cm = FileLock({str(path / LOCK)!r})"
        if how == "filelock"
        else f"from lazy_import_hook import _lock; cm = _lock.lock({str(path)!r})"
    )
    code = textwrap.dedent(
        f"""
        import sys
        {take}
        with cm:
            print("held", "filelock" in sys.modules, flush=True)
            sys.stdin.read()
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().split()
    assert line[0] == "held"
    if via_filelock is not None:
        assert line[1] == str(via_filelock)
    return proc


def release(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None
    proc.stdin.close()
    assert proc.wait(10) == 0


def test_re_entrant_in_a_thread_and_exclusive_across_threads(target: Path) -> None:
    entered: list[str] = []

    def take() -> None:
        with _lock.lock(str(target)):
            entered.append("other")

    with _lock.lock(str(target)), _lock.lock(str(target)):  # nested: no self-deadlock
        other = threading.Thread(target=take)
        other.start()
        other.join(0.3)
        assert other.is_alive() and entered == []  # waits while we hold it
    other.join(5)
    assert entered == ["other"]


@posix_only
def test_uncontended_lock_does_not_import_filelock(target: Path) -> None:
    code = (
        "import sys; from lazy_import_hook import _lock\n"
        f"with _lock.lock({str(target)!r}): print('filelock' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_filelock_holder_makes_the_hook_wait(target: Path) -> None:
    target.mkdir()
    proc = holder(target, "filelock")
    entered = threading.Event()

    def take() -> None:
        with _lock.lock(str(target)):
            entered.set()

    waiter = threading.Thread(target=take)
    waiter.start()
    try:
        assert not entered.wait(0.5)  # the fast path lost and filelock waits
    finally:
        release(proc)
    assert entered.wait(10)
    waiter.join(5)


@posix_only
def test_a_hook_holder_makes_filelock_wait(target: Path) -> None:
    proc = holder(target, "hook", via_filelock=False)  # the fast path holds it
    try:
        with pytest.raises(Timeout):
            FileLock(str(target / LOCK)).acquire(timeout=0.3)
    finally:
        release(proc)
    with FileLock(str(target / LOCK)).acquire(timeout=5):
        pass


@posix_only
def test_release_frees_the_lock_even_if_a_forked_child_keeps_the_descriptor(target: Path) -> None:
    lock = _lock.lock(str(target))
    with lock:
        pid = os.fork()
        if pid == 0:  # the child holds a copy of the descriptor and just sleeps
            time.sleep(3)
            os._exit(0)
    try:
        with FileLock(str(target / LOCK)).acquire(timeout=1):
            pass
    finally:
        os.kill(pid, 9)
        os.waitpid(pid, 0)


def outcome(take: Callable[[], object]) -> str:
    try:
        take()
    except Exception as e:
        return f"{type(e).__name__} {getattr(e, 'errno', '')}"
    return "acquired"


def filelock_once(path: Path) -> None:
    with FileLock(str(path), timeout=5):
        pass


def hook_once(target: Path) -> None:
    with _lock.lock(str(target)):
        pass


# The installed filelock decides what happens in odd cases (versions differ:
# 4.x refuses a symlinked lock file and falls back to a soft lock without
# flock; 3.x follows the link and raises NotImplementedError); the hook's
# lock must do whatever the installed filelock does, never something else.


@posix_only
def test_a_symlinked_lock_file_gets_what_filelock_does(target: Path, tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    for folder in (target, plain):
        folder.mkdir()
        (tmp_path / f"{folder.name}.real").write_text("")
        (folder / LOCK).symlink_to(tmp_path / f"{folder.name}.real")
    assert _lock._try_flock(str(target / LOCK), []) is False  # never followed by the fast path
    assert outcome(lambda: hook_once(target)) == outcome(lambda: filelock_once(plain / LOCK))


@posix_only
@pytest.mark.parametrize("umask", [0o000, 0o002, 0o022])
def test_the_lock_file_is_ours_alone_whichever_path_makes_it(target: Path, umask: int) -> None:
    """flock needs only a descriptor, even a read-only one: a lock file
    others could open is a lock they could hold forever. The fast path and
    filelock (when it takes over) make it alike."""
    old = os.umask(umask)
    try:
        hook_once(target)
        with _lock.TargetLock(str(target / "by-filelock"))._filelock():
            pass
    finally:
        os.umask(old)
    assert (target / LOCK).stat().st_mode & 0o777 == _lock.LOCK_MODE
    assert (target / "by-filelock" / LOCK).stat().st_mode & 0o777 == _lock.LOCK_MODE


@posix_only
def test_without_flock_the_outcome_is_filelocks_and_nothing_hangs(target: Path, tmp_path: Path) -> None:
    """A file system without flock: the fast path must not leave an empty lock
    file behind, which filelock 4.x's soft-lock fallback would wait on forever."""
    code = textwrap.dedent(
        f"""
        import errno, fcntl, os
        def no_flock(fd, op):
            raise OSError(errno.ENOSYS, "no flock here")
        fcntl.flock = no_flock
        from filelock import FileLock
        from lazy_import_hook import _lock

        def outcome(take):
            try:
                for _ in range(2):
                    take()
            except Exception as e:
                return type(e).__name__
            return "acquired twice"

        def plain():
            os.makedirs({str(tmp_path / "plain")!r}, exist_ok=True)
            with FileLock({str(tmp_path / "plain" / LOCK)!r}, timeout=5):
                pass

        def hook():
            with _lock.lock({str(target)!r}):
                pass

        print(outcome(plain), "|", outcome(hook))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    by_filelock, ours = out.stdout.strip().split(" | ")
    assert ours == by_filelock


@posix_only
def test_a_forked_child_leaving_the_lock_does_not_release_the_parents(target: Path) -> None:
    lock = _lock.lock(str(target))
    lock.__enter__()
    try:
        pid = os.fork()
        if pid == 0:  # the child leaves the locked block and exits
            try:
                lock.__exit__(None, None, None)
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
        with pytest.raises(Timeout):  # still ours
            FileLock(str(target / LOCK)).acquire(timeout=0.3)
    finally:
        lock.__exit__(None, None, None)
    with FileLock(str(target / LOCK)).acquire(timeout=5):
        pass


@posix_only
def test_an_interrupt_while_locking_leaves_no_locked_descriptor(
    target: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import fcntl

    real = fcntl.flock
    interrupted: list[int] = []

    def flock_then_interrupt(fd: int, op: int) -> None:
        real(fd, op)
        if op & fcntl.LOCK_EX and not interrupted:
            interrupted.append(fd)
            raise KeyboardInterrupt

    monkeypatch.setattr(fcntl, "flock", flock_then_interrupt)
    lock = _lock.lock(str(target))
    with pytest.raises(KeyboardInterrupt), lock:
        pass
    monkeypatch.setattr(fcntl, "flock", real)
    with pytest.raises(OSError):
        os.fstat(interrupted[0])  # closed
    with FileLock(str(target / LOCK)).acquire(timeout=1):
        pass  # nobody holds it
    with lock:  # and the lock still works in this process
        pass
