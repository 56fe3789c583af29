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
from pathlib import Path

import pytest
from filelock import FileLock, Timeout

from lazy_import_hook import _lock
from lazy_import_hook._target import LOCK

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="the flock fast path is POSIX-only")


def holder(path: Path, how: str) -> subprocess.Popen[str]:
    """Another process that takes the lock `how` ('filelock' or 'hook'),
    prints 'held', and releases it when its stdin closes."""
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
            print("held", flush=True)
            sys.stdin.read()
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().startswith("held")
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
    proc = holder(target, "hook")
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


@posix_only
def test_a_symlinked_lock_file_is_left_to_filelock(target: Path, tmp_path: Path) -> None:
    target.mkdir()
    elsewhere = tmp_path / "elsewhere.lock"
    elsewhere.write_text("")
    (target / LOCK).symlink_to(elsewhere)
    assert _lock._try_flock(str(target / LOCK)) is None  # not followed by the fast path
