"""The meta-path finder: it decides, it never installs.

The finder sits LAST on sys.meta_path, so it only ever sees names that every
core finder missed. A name that is not allow-listed costs one frozenset
lookup. CPython holds its global import lock while it asks a finder, so
`find_spec` only decides: it returns a spec whose loader installs (under the
importing module's own lock, see `_loader`), or, when an import would fail
at once (installs disabled, a refused target, a recent failure), a spec
that raises the informative error to an import and None to a probe
(`importlib.util.find_spec`, `pkgutil`), which must never install or raise.
"""

from __future__ import annotations

import _imp
import _thread
import os
import sys
from time import time as _now  # bound at import: sys.modules["time"] may be replaced later

from . import _target
from ._guard import Guard

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from importlib.machinery import ModuleSpec
    from types import ModuleType

    from ._errors import LazyInstallError
    from ._plan import Entry, Layer, Plan


class LazyFinder:
    """Installs allow-listed modules on their first (missed) import.

    Implements the `importlib.abc.MetaPathFinder` protocol (`find_spec`,
    `invalidate_caches`) and is registered as one; it does not inherit from
    it because importing `importlib.abc` costs ~30 ms at every start.
    """

    def __init__(self, plan: Plan, cache_key: str, cache_path: str) -> None:
        self.plan = plan
        self.target = plan.target
        self.cache_key = cache_key
        self.cache_path = cache_path
        self._entries = {n: e for n, e in plan.entries.items() if e.active}
        # Parents of dotted names -> the entries below them.
        self._prefixes: dict[str, list[Entry]] = {}
        for n, e in self._entries.items():
            for i in range(1, n.count(".") + 1):
                self._prefixes.setdefault(".".join(n.split(".")[:i]), []).append(e)
        # Every name the finder answers for: a miss costs this one lookup.
        self._names = frozenset(self._entries) | frozenset(self._prefixes)
        self._failed: dict[str, LazyInstallError] = {}
        self._local = _thread._local()
        # Failures recorded on disk before this moment are not a reason to wait
        # (see retry-after): importlib.invalidate_caches() means "retry now".
        self.retry_failures_after = 0.0
        self.guard = Guard(self.target, self._entries, self._served_infos, plan.verified)
        self.guard.hidden.update(plan.hidden)
        self.guard.source_only = plan.foreign_abi
        # Set by the first prefetch (see _prefetch): waits for the prefetch
        # of an import name, if one runs, and returns its error.
        self.await_prefetch: Callable[[str], LazyInstallError | None] = _no_prefetch
        # The read-only layers' guards: a layer's stale copy stays hidden for
        # good, so the target's fresh one is served (a layer never changes).
        self.guards = [*map(self._layer_guard, plan.layers), self.guard]

    @property
    def hidden(self) -> set[str]:
        """Import names the target holds at a version the pins do not allow."""
        return self.guard.hidden

    def __repr__(self) -> str:
        return f"<LazyFinder target={self.target!r} entries={len(self._entries)}>"

    def _layer_guard(self, layer: Layer) -> Guard:
        guard = Guard(layer.folder, self._entries, lambda name: self._served_infos(name, layer.folder),
                      layer.verified)  # fmt: skip
        guard.hidden.update(layer.hidden)
        return guard

    def attach(self) -> None:
        """Guard the folders of the layers and the target (through
        sys.path_hooks, which survive a cleared sys.path_importer_cache)."""
        for guard in self.guards:
            sys.path_hooks.insert(0, guard.path_hook)
            _forget_folders(guard)

    def detach(self) -> None:
        sys.path_hooks[:] = [h for h in sys.path_hooks if getattr(h, "__self__", None) not in self.guards]
        for guard in self.guards:
            _forget_folders(guard)

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None = None,
        target: ModuleType | None = None,
    ) -> ModuleSpec | None:
        if fullname not in self._names:
            return None
        return self._decide(fullname, path)

    def _decide(self, fullname: str, path: Sequence[str] | None) -> ModuleSpec | None:
        from ._loader import FailingLoader, InstallingLoader, called_by_import  # only when a name is ours

        entry = self._entries.get(fullname)
        if entry is None:
            below = self._prefixes[fullname]
            if len(below) > 1:
                return self._namespace(fullname)  # the submodule import picks the entry
            entry = below[0]  # the one entry below: install it, then find this parent
        if getattr(self._local, "busy", False):
            return None  # the hook's own imports during an install never recurse
        failed = self._failure(fullname, entry)
        if failed is not None:
            spec = _target.ModuleSpec(fullname, FailingLoader(failed))  # type: ignore[arg-type]
            return spec if called_by_import(2) else None
        if self._fails_at_once(entry) and not called_by_import(2):
            return None  # a probe: the import would raise at once
        loader = InstallingLoader(lambda: self.install(fullname, entry, path))
        return _target.ModuleSpec(fullname, loader)  # type: ignore[arg-type]  # a Loader without importlib.abc's cost

    def _failure(self, fullname: str, entry: Entry) -> LazyInstallError | None:
        """The error of an earlier attempt: at `fullname`, or at the entry a
        parent's import installs (a failed prefetch of `a.b` for `import a`)."""
        return self._failed.get(fullname) or self._failed.get(entry.import_name)

    def _fails_at_once(self, entry: Entry) -> bool:
        """Cheap: whether an import would fail without running an installer."""
        from ._failures import recent

        settings = self.plan.settings
        if not settings.enabled or self.plan.unsafe:
            return True
        if _target.problem(self.target, library=False) is not None:
            return True
        return recent(self.target, entry, settings.retry_after, self.retry_failures_after)

    def invalidate_caches(self) -> None:
        """`importlib.invalidate_caches()` clears the negative cache. Never raises."""
        if not getattr(self._local, "invalidating", False):
            self._failed.clear()
            self.retry_failures_after = _now()

    def _namespace(self, fullname: str) -> ModuleSpec:
        """A parent of a dotted allow-listed name that exists nowhere yet: a
        namespace package on the target, so the import reaches the real name."""
        spec = _target.ModuleSpec(fullname, None, is_package=True)
        spec.submodule_search_locations = [os.path.join(self.target, *fullname.split("."))]
        return spec

    # -- in the loader, under the module's own lock -------------------------

    def install(self, fullname: str, entry: Entry, path: Sequence[str] | None) -> ModuleSpec:
        """Install `entry` and return the real spec of `fullname`. While a
        prefetch installs it, wait for that instead and fail as it did."""
        error = self.await_prefetch(entry.import_name)
        if error is not None:
            self._failed.setdefault(fullname, error)
        return self.provide(fullname, entry, path)[0]

    def provide(
        self, fullname: str, entry: Entry, path: Sequence[str] | None, *, prefetched_by: str | None = None
    ) -> tuple[ModuleSpec, bool]:
        """Install `entry` if it must be: the real spec of `fullname`, and
        whether an installer ran. Every failure is a LazyInstallError,
        remembered for the next import. `prefetched_by`: see install_entry."""
        from . import _transaction
        from ._errors import LazyInstallError

        failed = self._failure(fullname, entry)
        if failed is not None:
            raise failed.with_traceback(None)
        if path is None and "." in fullname:  # a prefetch: no parent was imported to say where
            path = [os.path.join(self.target, *fullname.split(".")[:-1])]
        self._local.busy = True
        try:
            since = self.retry_failures_after
            ran = _transaction.install_entry(self.plan, entry, since=since, prefetched_by=prefetched_by)
            if ran:
                self._after_install()
            spec = self.real_spec(fullname, entry, path)
            if spec is None:
                raise _transaction.still_missing(self.plan, entry)
            return spec, ran
        except LazyInstallError as e:
            self._failed[fullname] = e
            raise
        except Exception as e:  # anything unexpected is still an ImportError
            error = LazyInstallError(
                f"lazy-import-hook failed while installing for 'import {fullname}': {type(e).__name__}: {e}",
                name=fullname,
            )
            self._failed[fullname] = error
            raise error from e
        finally:
            self._local.busy = False

    def findable(self, entry: Entry) -> bool:
        """Whether an import of `entry` needs no install: it is imported
        already, or the finders ahead of the hook find it (the core
        environment, a layer, or the target at the pinned version). A dotted
        name's parent is not imported to find out: its folders are looked in."""
        name = entry.import_name
        if name in sys.modules:
            return True
        if "." not in name:
            return self._ask_finders_ahead(name, None) is not None
        from ._transaction import satisfied

        if satisfied(self.target, entry):
            return True
        parent = name.split(".")[:-1]  # where the parent would be, on every folder of sys.path
        folders = [os.path.join(p, *parent) for p in sys.path if isinstance(p, str)]
        return self._ask_finders_ahead(name, [f for f in folders if os.path.isdir(f)]) is not None

    def _after_install(self) -> None:
        """Re-scan the target and rewrite the startup cache, so other starts stay warm.

        A dependency this install brought may be another entry's module at a
        version its pin does not allow: hide it too, never serve it."""
        from ._holdings import scan
        from ._plan import write_cache

        checked_at = _target.mtime(self.target)
        scan(self.plan)
        self.guard.hidden = set(self.plan.hidden)  # one swap: no import sees an empty set meanwhile
        self.guard.verified = dict(self.plan.verified)
        if self.cache_path:
            write_cache(self.cache_path, self.plan, self.cache_key, checked_at)

    def real_spec(self, fullname: str, entry: Entry, path: Sequence[str] | None) -> ModuleSpec | None:
        """After an install: find the module as a later start would, asking
        the finders ahead of the hook first (so whatever instruments imports
        sees it), then the path-based finder on the target."""
        self.guard.unhide(entry.import_name, self.plan.verified.get(entry.import_name))
        self.refresh_import_caches()
        places: list[str] = list(path) if path is not None else []
        if path is None:
            from ._pth import read_pth

            places = [self.target, *read_pth(self.target, outside=self.plan.settings.pth_imports)[0]]
            _target.activate(places)
        spec = self._ask_finders_ahead(fullname, path)
        if spec is None:
            spec = _target.PathFinder.find_spec(fullname, places)
        if spec is None and path is not None:
            parent = os.path.join(self.target, *fullname.split(".")[:-1])
            spec = _target.PathFinder.find_spec(fullname, [parent])
        return spec

    def found_ahead(self, name: str) -> bool:
        """Whether a finder ahead of the hook finds top-level `name`."""
        return self._ask_finders_ahead(name, None) is not None

    def _ask_finders_ahead(self, fullname: str, path: Sequence[str] | None) -> ModuleSpec | None:
        for finder in list(sys.meta_path):
            if finder is self or isinstance(finder, LazyFinder):
                return None
            find = getattr(finder, "find_spec", None)
            if find is None:
                continue
            _imp.acquire_lock()  # as CPython calls finders: under its global import lock
            try:
                spec: ModuleSpec | None = find(fullname, path, None)
            finally:
                _imp.release_lock()
            if spec is not None:
                return spec
        return None

    def refresh_import_caches(self) -> None:
        import importlib

        self._local.invalidating = True
        try:
            importlib.invalidate_caches()
        finally:
            self._local.invalidating = False

    def _served_infos(self, name: str, folder: str = "") -> tuple[str, ...] | None:
        """For a guard: the dist-info folders of `name` if `folder` (the
        target by default) holds versions its pins allow (imports packaging:
        called rarely)."""
        from ._holdings import matching_infos

        entry = self._entries.get(name)
        return matching_infos(folder or self.target, entry) if entry is not None else ()


def _no_prefetch(name: str) -> LazyInstallError | None:
    return None


def _forget_folders(guard: Guard) -> None:
    """Drop the cached path-entry finders of the target's folders, so the
    path hooks make them afresh."""
    for folder in [p for p in sys.path_importer_cache if isinstance(p, str) and guard.covers(p)]:
        del sys.path_importer_cache[folder]


def active_finder() -> LazyFinder | None:
    """The hook installed in this process, if any (the last one counts)."""
    return next((f for f in reversed(sys.meta_path) if isinstance(f, LazyFinder)), None)
