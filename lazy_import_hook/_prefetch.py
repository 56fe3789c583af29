"""Background warm-up: `prefetch()` installs allow-listed names on a worker
thread, by the path an import takes (the finder, the target lock, the audit
line), so that the first import of a backend need not wait for an installer.

- One worker thread, a daemon, started when there is work and ending when
  there is none: an idle process keeps no thread, and the interpreter's exit
  never waits for one. It never ends while its installer runs: that is the
  thread the installer's parent-death signal watches (see _process).
- One future per target and import name while its prefetch waits or runs:
  another prefetch of the name shares it, and an import of the name waits
  for it in the loader (_serve.install), never starting a second install.
- At exit, an install in flight is abandoned as a kill would abandon it (the
  installer dies with the process, the next install removes its staging
  folder), and every future not done fails with `reason == "interrupted"`,
  so nobody waits on one that will never finish. A forked child has no
  worker: its inherited futures fail so too, and its imports install, or
  wait on the target lock, by themselves.
"""

from __future__ import annotations

import atexit
import functools
import os
import sys
import threading
from collections import deque
from concurrent.futures import Future, InvalidStateError
from typing import overload

from . import _serve, _transaction
from ._audit import triggering_module
from ._errors import InstallInterruptedError, LazyInstallError
from ._finder import LazyFinder
from ._watch import notice

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any, Literal

    from ._plan import Entry

INSTALLED = "installed"  # an installer ran for it
PRESENT = "present"  # nothing to do: imported, in the core environment, or in the target at its pin
NOT_FOR_THIS_PLATFORM = "not-for-this-platform"  # every marker of the entry is false here


class _Task:
    """One import name to install, and the future of everyone who waits for it."""

    def __init__(self, finder: LazyFinder, entry: Entry, trigger: str) -> None:
        self.finder = finder
        self.entry = entry
        self.trigger = trigger  # the module that called prefetch(), for the notice and the audit line
        self.key = (id(finder), entry.import_name)  # the task holds the finder: the id stays its own
        self.future: Future[str] = Future()

    def run(self) -> None:
        name = self.entry.import_name
        try:
            ran = _serve.provide(self.finder, name, self.entry, None, prefetched_by=self.trigger)[1]
        except BaseException as e:  # whatever happens reaches whoever waits
            _settle(self.future, error=e)
        else:
            _settle(self.future, INSTALLED if ran else PRESENT)

    def interrupt(self, why: str) -> None:
        name = self.entry.import_name
        error = InstallInterruptedError(f"prefetch({name!r}) did not finish: {why}", name=name)
        _settle(self.future, error=error)


def _settle(future: Future[str], result: str = "", *, error: BaseException | None = None) -> None:
    """Finish `future` unless it is finished already (interrupted at exit
    while its install went on)."""
    try:
        if error is None:
            future.set_result(result)
        else:
            future.set_exception(error)
    except InvalidStateError:
        pass


def _done(result: str) -> Future[str]:
    future: Future[str] = Future()
    future.set_result(result)
    return future


def _failed(error: BaseException) -> Future[str]:
    future: Future[str] = Future()
    future.set_exception(error)
    return future


class _Gather:
    """The future of one prefetch() call: each name's outcome in the order
    asked, or the first name's error. Running from the start, so `cancel()`
    is refused: the installs go on (an import may wait for them)."""

    def __init__(self, parts: dict[str, Future[str]]) -> None:
        self.parts = parts
        self.future: Future[dict[str, str]] = Future()
        self.future.set_running_or_notify_cancel()
        self.lock = threading.Lock()
        self.finished = False
        if not parts:
            self.future.set_result({})
        for part in parts.values():
            part.add_done_callback(self._part_done)

    def _part_done(self, _: Future[str]) -> None:
        with self.lock:
            if self.finished or not all(p.done() for p in self.parts.values()):
                return
            self.finished = True
        errors = [e for e in (p.exception() for p in self.parts.values()) if e is not None]
        if errors:
            self.future.set_exception(errors[0])
        else:
            self.future.set_result({name: p.result() for name, p in self.parts.items()})

    def after_fork_in_child(self) -> None:
        self.lock = threading.Lock()
        _reinit(self.future)


def _reinit(future: Future[Any]) -> None:
    """In a forked child: the threads that held the future's lock, or waited
    on it, are not here."""
    future._condition = threading.Condition()
    future._waiters = []


class _Warmup:
    """The process's one queue and worker thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.queue: deque[_Task] = deque()
        self.tasks: dict[tuple[int, str], _Task] = {}  # queued or running, by (finder, import name)
        self.gathers: set[_Gather] = set()  # prefetch() calls not finished yet
        self.worker: threading.Thread | None = None
        self.current: _Task | None = None  # the one the worker runs
        self.closing = False

    def request(self, finder: LazyFinder, entry: Entry, trigger: str) -> Future[str]:
        """The future of `entry`'s install: one already asked for, an
        answer at once, or a new task for the worker."""
        if not entry.active:
            return _done(NOT_FOR_THIS_PLATFORM)
        key = (id(finder), entry.import_name)
        if key not in self.tasks:
            if _serve.findable(finder, entry):
                return _done(PRESENT)
            declined = _transaction.declined(finder.plan, entry, trigger)  # asked here, never on the worker
            if declined is not None:
                return _failed(declined)
        with self.lock:
            task = self.tasks.get(key)
            if task is None:
                task = self._add(_Task(finder, entry, trigger))
            return task.future

    def _add(self, task: _Task) -> _Task:
        """Queue `task` (under the lock), starting the worker if none runs."""
        task.finder.await_prefetch = functools.partial(self.wait_for, task.finder)
        if self.closing:
            task.interrupt("the process is exiting")
            return task
        self.tasks[task.key] = task
        self.queue.append(task)
        if self.worker is None:
            self.worker = threading.Thread(target=self._work, name="lazy-import-hook prefetch", daemon=True)
            try:
                self.worker.start()
            except RuntimeError as e:  # no new threads at interpreter shutdown
                self.worker = None
                self.queue.pop()
                del self.tasks[task.key]
                task.interrupt(str(e))
        return task

    def _work(self) -> None:
        while True:
            with self.lock:
                if self.closing or not self.queue:
                    self.worker = None
                    return
                task = self.current = self.queue.popleft()
                task.future.set_running_or_notify_cancel()  # under the lock: close() cannot finish it first
            self._run(task)

    def _run(self, task: _Task) -> None:
        """Run `task` on this thread. A done-callback's SystemExit is ignored
        and any other BaseException reported, as in a thread of their own:
        neither ends the queue."""
        try:
            if task.finder not in sys.meta_path:
                task.interrupt("install() or uninstall() replaced the hook that asked for it")
            else:
                task.run()
        except SystemExit:
            pass  # ignored, as a thread's own SystemExit is
        except BaseException as e:
            report = (type(e), e, e.__traceback__, threading.current_thread())
            threading.excepthook(threading.ExceptHookArgs(report))
        finally:
            with self.lock:
                if self.current is task:
                    self.current = None
                if self.tasks.get(task.key) is task:
                    del self.tasks[task.key]

    def wait_for(self, finder: LazyFinder, name: str) -> LazyInstallError | None:
        """For an import of `name`: its prefetch's error, if one is queued or
        runs. A queued one this thread runs itself, now: waiting for it could
        wait on a done-callback that waits for this import's module lock.
        Not on the worker itself (a callback there that imports would wait
        for itself); and an interrupted prefetch is no error: the import
        installs on its own."""
        with self.lock:
            task = self.tasks.get((id(finder), name))
            if task is None or threading.current_thread() is self.worker:
                return None
            queued = task is not self.current and task in self.queue
            if queued:
                self.queue.remove(task)
                task.future.set_running_or_notify_cancel()
        if queued:
            self._run(task)
        error = task.future.exception()
        if isinstance(error, LazyInstallError) and not isinstance(error, InstallInterruptedError):
            return error
        return None

    def track(self, gather: _Gather) -> None:
        with self.lock:
            self.gathers.add(gather)
        gather.future.add_done_callback(lambda _: self._untrack(gather))

    def _untrack(self, gather: _Gather) -> None:
        with self.lock:
            self.gathers.discard(gather)

    def close(self) -> None:
        """At exit: nothing new starts, and nobody waits for what will not finish."""
        with self.lock:
            self.closing = True
            running = self.current
            tasks = list(self.tasks.values())
            self.queue.clear()
            self.tasks.clear()
        if running is not None:
            notice(
                f"exiting while prefetch({running.entry.import_name!r}) installs {running.entry.what}: "
                "the install is abandoned (nothing half-installed is left); the next import or "
                "prefetch runs it again"
            )
        for task in tasks:
            task.interrupt("the process is exiting")

    def after_fork_in_child(self) -> None:
        """No worker thread here, and no lock held by one."""
        self.lock = threading.Lock()
        self.worker = self.current = None
        tasks = list(self.tasks.values())
        self.queue.clear()
        self.tasks.clear()
        for gather in self.gathers:
            gather.after_fork_in_child()
        for task in tasks:
            _reinit(task.future)
            task.interrupt(f"this process was forked from process {os.getppid()} while it ran there")


_WARMUP = _Warmup()
atexit.register(_WARMUP.close)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_WARMUP.after_fork_in_child)


@overload
def prefetch(*names: str, wait: Literal[True] = ...) -> dict[str, str]: ...
@overload
def prefetch(*names: str, wait: Literal[False]) -> Future[dict[str, str]]: ...
@overload
def prefetch(*names: str, wait: bool) -> dict[str, str] | Future[dict[str, str]]: ...


def prefetch(*names: str, wait: bool = True) -> dict[str, str] | Future[dict[str, str]]:
    """Install allow-listed import names now (default: every entry), one
    after the other on a background thread, as their imports would:

        warm = lazy_import_hook.prefetch("isodate", "yaml", wait=False)
        ...                                    # serve meanwhile
        warm.result()                          # {"isodate": "installed", "yaml": "present"}

    The result maps each name to "installed", "present" (imported already,
    in the core environment, or in the target at its pin) or
    "not-for-this-platform" (its markers are false here). A failure is the
    LazyInstallError its import would raise, that of the first failing name
    in the order asked, after every name was tried; later imports of that
    name raise it too. An import of a name being prefetched waits for it.
    `wait=True` (the default) waits and returns the result or raises;
    `wait=False` returns a `concurrent.futures.Future` at once (its
    callbacks run on the worker thread). Raises ValueError for a name not on
    the allowlist, RuntimeError before install().
    """
    finder = _installed_finder()
    entries = _entries(finder, names)
    if wait and threading.current_thread() is _WARMUP.worker:
        raise RuntimeError("prefetch(wait=True) in a prefetch's callback waits for itself; use wait=False")
    trigger = triggering_module() or ""  # "": a prefetch all the same, asked from nowhere known
    gather = _Gather({e.import_name: _WARMUP.request(finder, e, trigger) for e in entries})
    if not gather.future.done():
        _WARMUP.track(gather)
    return gather.future.result() if wait else gather.future


def _installed_finder() -> LazyFinder:
    finder = next((f for f in reversed(sys.meta_path) if isinstance(f, LazyFinder)), None)
    if finder is None:
        raise RuntimeError("lazy_import_hook.prefetch() needs install() to have run first")
    return finder


def _entries(finder: LazyFinder, names: Iterable[object]) -> list[Entry]:
    """The entries of `names` (all, when none), each once, in the order asked."""
    wrong = [repr(n) for n in names if not isinstance(n, str)]
    if wrong:
        raise TypeError(f"prefetch() takes import names, e.g. prefetch('a', 'b'); got {', '.join(wrong)}")
    allowlist = finder.plan.entries
    unknown = [str(n) for n in names if n not in allowlist]
    if unknown:
        raise ValueError(
            f"prefetch(): not on the allowlist: {', '.join(unknown)} "
            f"(allow-listed: {', '.join(allowlist) or 'nothing'})"
        )
    return [allowlist[str(n)] for n in dict.fromkeys(names or allowlist)]
