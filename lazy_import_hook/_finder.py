"""The meta-path finder: the find_spec decision, the negative cache, the guard.

The finder sits LAST on sys.meta_path, so it only ever sees names that every
core finder missed. A name that is not allow-listed costs one dict lookup.
Installing is delegated to `_transaction`, imported only when needed.
"""

from __future__ import annotations

import _thread
import os
import sys

from ._errors import LazyInstallError
from ._target import mtime, path_entry_finder

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from importlib.machinery import ModuleSpec
    from types import ModuleType

    from ._plan import Entry, Plan


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
        self.hidden: set[str] = set()
        # Wrappers left by an earlier install() in this process now answer to
        # this finder's set, so a name it no longer hides is visible again.
        for folder, finder in sys.path_importer_cache.items():
            if isinstance(finder, HidingFinder) and folder.startswith(self.target):
                finder.hidden = self.hidden
        hide(self.target, plan.hidden, self.hidden)

    def __repr__(self) -> str:
        return f"<LazyFinder target={self.target!r} entries={len(self._entries)}>"

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None = None,
        target: ModuleType | None = None,
    ) -> ModuleSpec | None:
        if fullname not in self._names:
            return None
        return self._find(fullname, path)

    def _find(self, fullname: str, path: Sequence[str] | None) -> ModuleSpec | None:
        entry = self._entries.get(fullname)
        if entry is None:
            below = self._prefixes[fullname]
            if len(below) > 1:
                return self._namespace(fullname)  # the submodule import picks the entry
            entry = below[0]  # the one entry below: install it, then find this parent
        if getattr(self._local, "busy", False):
            return None  # the hook's own imports during an install never recurse
        failed = self._failed.get(fullname)
        if failed is not None:
            raise failed.with_traceback(None)
        return self._satisfy(fullname, entry, path)

    def invalidate_caches(self) -> None:
        """`importlib.invalidate_caches()` clears the negative cache."""
        if not getattr(self._local, "invalidating", False):
            import time

            self._failed.clear()
            self.retry_failures_after = time.time()

    def refresh_import_caches(self) -> None:
        import importlib

        self._local.invalidating = True
        try:
            importlib.invalidate_caches()
        finally:
            self._local.invalidating = False

    def _namespace(self, fullname: str) -> ModuleSpec:
        """A parent of a dotted allow-listed name that exists nowhere yet: a
        namespace package on the target, so the import reaches the real name."""
        from importlib.machinery import ModuleSpec

        spec = ModuleSpec(fullname, None, is_package=True)
        spec.submodule_search_locations = [os.path.join(self.target, *fullname.split("."))]
        return spec

    def _satisfy(self, fullname: str, entry: Entry, path: Sequence[str] | None) -> ModuleSpec:
        from . import _transaction

        self._local.busy = True
        try:
            if _transaction.install_entry(self.plan, entry, since=self.retry_failures_after):
                self._after_install(entry)
            spec = self.find_in_target(fullname, path)
            if spec is None:
                raise _transaction.still_missing(self.target, entry)
            return spec
        except LazyInstallError as e:
            self._failed[fullname] = e
            raise
        except Exception as e:  # anything unexpected is still an ImportError
            error = LazyInstallError(
                f"lazy-import-hook failed while installing for 'import {fullname}': "
                f"{type(e).__name__}: {e}",
                name=fullname,
            )
            self._failed[fullname] = error
            raise error from e
        finally:
            self._local.busy = False

    def _after_install(self, entry: Entry) -> None:
        """Re-scan the target and rewrite the startup cache, so other starts stay warm.

        A dependency this install brought may be another entry's module at a
        version its pin does not allow: hide it too, never serve it."""
        from ._allowlist import scan
        from ._plan import write_cache

        self.unhide(entry.import_name)
        checked_at = mtime(self.target)
        scan(self.plan)
        hide(self.target, self.plan.hidden, self.hidden)
        if self.cache_path:
            write_cache(self.cache_path, self.plan, self.cache_key, checked_at)

    def find_in_target(self, fullname: str, path: Sequence[str] | None) -> ModuleSpec | None:
        """After an install: refresh caches and find the module in the target."""
        from importlib.machinery import PathFinder

        self.unhide(fullname)
        self.refresh_import_caches()
        if path is None:
            from ._pth import read_pth
            from ._target import activate

            pth_paths, _ = read_pth(self.target)
            activate([self.target, *pth_paths])
            return PathFinder.find_spec(fullname, [self.target, *pth_paths])
        spec = PathFinder.find_spec(fullname, list(path))
        if spec is None:
            parent = os.path.join(self.target, *fullname.split(".")[:-1])
            spec = PathFinder.find_spec(fullname, [parent])
        return spec

    def unhide(self, fullname: str) -> None:
        self.hidden.discard(fullname)


class HidingFinder:
    """Wraps the path-entry finder of a target folder and hides stale modules.

    When the allowlist's pin no longer matches what the target holds, the old
    version must not be served: the path-based finder misses it, so the
    import reaches `LazyFinder`, which installs the pinned version.
    """

    def __init__(self, inner: object, hidden: set[str]) -> None:
        self.inner = inner
        self.hidden = hidden  # shared with LazyFinder, which unhides after an install

    def find_spec(self, fullname: str, target: ModuleType | None = None) -> ModuleSpec | None:
        if fullname in self.hidden:
            return None
        spec: ModuleSpec | None = self.inner.find_spec(fullname, target)  # type: ignore[attr-defined]
        return spec

    def invalidate_caches(self) -> None:
        invalidate = getattr(self.inner, "invalidate_caches", None)
        if invalidate is not None:
            invalidate()

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


def hide(target: str, names: Iterable[str], hidden: set[str]) -> None:
    for name in names:
        hidden.add(name)
        folder = os.path.join(target, *name.split(".")[:-1])
        current = sys.path_importer_cache.get(folder)
        if isinstance(current, HidingFinder):
            current.hidden = hidden
            continue
        inner = current if current is not None else path_entry_finder(folder)
        if inner is not None:
            sys.path_importer_cache[folder] = HidingFinder(inner, hidden)

