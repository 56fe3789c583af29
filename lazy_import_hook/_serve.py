"""Serving an allow-listed import the finder took: the spec it returns, the
install under the importing module's own lock, and the real spec after it.

The finder (see _finder) only decides whether a name is one of its own; a
start whose imports all hit loads none of this. It sees the finder through
the `Finder` protocol below, which _finder.LazyFinder is.
"""

from __future__ import annotations

import _imp
import os
import sys

from . import _target

TYPE_CHECKING = False
if TYPE_CHECKING:
    import _thread
    from collections.abc import Callable, Sequence
    from importlib.machinery import ModuleSpec
    from typing import Any, Protocol

    from ._errors import LazyInstallError
    from ._plan import Entry, Plan

    class Guard(Protocol):
        hidden: set[str]
        verified: dict[str, tuple[str, ...]]

        def unhide(self, name: str, infos: tuple[str, ...] | None = None) -> None: ...

    class Finder(Protocol):
        """What serving reads and keeps on the finder (_finder.LazyFinder)."""

        plan: Plan
        target: str
        cache_key: str
        cache_path: str
        @property
        def guard(self) -> Guard: ...
        retry_failures_after: float
        await_prefetch: Callable[[str], LazyInstallError | None]
        _active: frozenset[str]
        _prefixes: dict[str, list[str]]
        _failed: dict[str, LazyInstallError]
        _local: _thread._local


def decide(finder: Finder, fullname: str, path: Sequence[str] | None) -> ModuleSpec | None:
    from ._loader import FailingLoader, InstallingLoader, called_by_import  # only when a name is ours

    if fullname in finder._active:
        entry = finder.plan.entries[fullname]
    else:
        below = finder._prefixes[fullname]
        if len(below) > 1:
            return _namespace(finder, fullname)  # the submodule import picks the entry
        entry = finder.plan.entries[below[0]]  # the one entry below: install it, then find this parent
    if getattr(finder._local, "busy", False):
        return None  # the hook's own imports during an install never recurse
    failed = _failure(finder, fullname, entry)
    if failed is not None:
        spec = _target.ModuleSpec(fullname, FailingLoader(failed))  # type: ignore[arg-type]
        return spec if called_by_import(2) else None
    if _fails_at_once(finder, entry) and not called_by_import(2):
        return None  # a probe: the import would raise at once
    loader = InstallingLoader(lambda: install(finder, fullname, entry, path))
    return _target.ModuleSpec(fullname, loader)  # type: ignore[arg-type]  # a Loader without importlib.abc's cost


def _failure(finder: Finder, fullname: str, entry: Entry) -> LazyInstallError | None:
    """The error of an earlier attempt: at `fullname`, or at the entry a
    parent's import installs (a failed prefetch of `a.b` for `import a`)."""
    return finder._failed.get(fullname) or finder._failed.get(entry.import_name)


def _fails_at_once(finder: Finder, entry: Entry) -> bool:
    """Cheap: whether an import would fail without running an installer."""
    from ._failures import recent
    from ._safety import problem

    settings = finder.plan.settings
    if not settings.enabled or finder.plan.unsafe:
        return True
    if problem(finder.target, library=False) is not None:
        return True
    return recent(finder.target, entry, settings.retry_after, finder.retry_failures_after)


def _namespace(finder: Finder, fullname: str) -> ModuleSpec:
    """A parent of a dotted allow-listed name that exists nowhere yet: a
    namespace package on the target, so the import reaches the real name."""
    spec = _target.ModuleSpec(fullname, None, is_package=True)
    spec.submodule_search_locations = [os.path.join(finder.target, *fullname.split("."))]
    return spec


# -- in the loader, under the module's own lock -------------------------


def install(finder: Finder, fullname: str, entry: Entry, path: Sequence[str] | None) -> ModuleSpec:
    """Install `entry` and return the real spec of `fullname`. While a
    prefetch installs it, wait for that instead and fail as it did."""
    error = finder.await_prefetch(entry.import_name)
    if error is not None:
        finder._failed.setdefault(fullname, error)
    return provide(finder, fullname, entry, path)[0]


def provide(
    finder: Finder,
    fullname: str,
    entry: Entry,
    path: Sequence[str] | None,
    *,
    prefetched_by: str | None = None,
) -> tuple[ModuleSpec, bool]:
    """Install `entry` if it must be: the real spec of `fullname`, and
    whether an installer ran. Every failure is a LazyInstallError,
    remembered for the next import. `prefetched_by`: see install_entry."""
    from . import _transaction
    from ._errors import LazyInstallError

    failed = _failure(finder, fullname, entry)
    if failed is not None:
        raise failed.with_traceback(None)
    if path is None and "." in fullname:  # a prefetch: no parent was imported to say where
        path = [os.path.join(finder.target, *fullname.split(".")[:-1])]
    finder._local.busy = True
    try:
        since = finder.retry_failures_after
        ran = _transaction.install_entry(finder.plan, entry, since=since, prefetched_by=prefetched_by)
        if ran:
            _after_install(finder)
        spec = real_spec(finder, fullname, entry, path)
        if spec is None:
            raise _transaction.still_missing(finder.plan, entry)
        return spec, ran
    except LazyInstallError as e:
        finder._failed[fullname] = e
        raise
    except Exception as e:  # anything unexpected is still an ImportError
        raise _unexpected(finder, fullname, e) from e
    finally:
        finder._local.busy = False


def _unexpected(finder: Finder, fullname: str, e: Exception) -> LazyInstallError:
    """An ImportError for an error nothing expected, remembered as a failure."""
    from ._errors import LazyInstallError

    error = LazyInstallError(
        f"lazy-import-hook failed while installing for 'import {fullname}': {type(e).__name__}: {e}",
        name=fullname,
    )
    finder._failed[fullname] = error
    return error


def findable(finder: Finder, entry: Entry) -> bool:
    """Whether an import of `entry` needs no install: it is imported
    already, or the finders ahead of the hook find it (the core
    environment, a layer, or the target at the pinned version). A dotted
    name's parent is not imported to find out: its folders are looked in."""
    name = entry.import_name
    if name in sys.modules:
        return True
    if "." not in name:
        return _ask_finders_ahead(finder, name, None) is not None
    from ._transaction import satisfied

    if satisfied(finder.target, entry):
        return True
    parent = name.split(".")[:-1]  # where the parent would be, on every folder of sys.path
    folders = [os.path.join(p, *parent) for p in sys.path if isinstance(p, str)]
    return _ask_finders_ahead(finder, name, [f for f in folders if os.path.isdir(f)]) is not None


def _after_install(finder: Finder) -> None:
    """Re-scan the target and rewrite the startup cache, so other starts stay warm.

    A dependency this install brought may be another entry's module at a
    version its pin does not allow: hide it too, never serve it."""
    from ._holdings import scan
    from ._plan import write_cache

    checked_at = _target.mtime(finder.target)
    scan(finder.plan)
    finder.guard.hidden = set(finder.plan.hidden)  # one swap: no import sees an empty set meanwhile
    finder.guard.verified = dict(finder.plan.verified)
    if finder.cache_path:
        write_cache(finder.cache_path, finder.plan, finder.cache_key, checked_at)


def real_spec(finder: Finder, fullname: str, entry: Entry, path: Sequence[str] | None) -> ModuleSpec | None:
    """After an install: find the module as a later start would, asking
    the finders ahead of the hook first (so whatever instruments imports
    sees it), then the path-based finder on the target."""
    finder.guard.unhide(entry.import_name, finder.plan.verified.get(entry.import_name))
    refresh_import_caches(finder)
    places: list[str] = list(path) if path is not None else []
    if path is None:
        from ._pth import read_pth

        places = [finder.target, *read_pth(finder.target, outside=finder.plan.settings.pth_imports)[0]]
        _target.activate(places)
    spec = _ask_finders_ahead(finder, fullname, path)
    if spec is None:
        spec = _target.PathFinder.find_spec(fullname, places)
    if spec is None and path is not None:
        parent = os.path.join(finder.target, *fullname.split(".")[:-1])
        spec = _target.PathFinder.find_spec(fullname, [parent])
    return spec


def found_ahead(finder: Finder, name: str) -> bool:
    """Whether a finder ahead of the hook finds top-level `name`."""
    return _ask_finders_ahead(finder, name, None) is not None


def _ask_finders_ahead(finder: Finder, fullname: str, path: Sequence[str] | None) -> ModuleSpec | None:
    for other in list(sys.meta_path):
        if isinstance(other, type(finder)):  # the finders ahead of the hook only (it included)
            return None
        find = getattr(other, "find_spec", None)
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


def refresh_import_caches(finder: Finder) -> None:
    finder._local.invalidating = True
    try:
        invalidate_caches()
    finally:
        finder._local.invalidating = False


def invalidate_caches() -> None:
    """importlib.invalidate_caches(). From CPython 3.13 on, the path-based
    finder's part of it imports importlib.metadata (40 to 70 ms here, with
    zipfile and shutil) only to clear importlib.metadata's own cache, which
    does not exist while importlib.metadata was never imported: then that
    part is done here as 3.13+ does the rest of it."""
    import importlib

    external = sys.modules.get("_frozen_importlib_external")
    namespace = _namespace_path(external)
    if sys.version_info < (3, 13) or "importlib.metadata" in sys.modules or namespace is None:
        importlib.invalidate_caches()
        return
    for other in list(sys.meta_path):
        if other is _target.PathFinder:
            _invalidate_path_entries(getattr(external, "_path_isabs", os.path.isabs))
            namespace._epoch += 1  # namespace packages recompute their __path__
        elif hasattr(other, "invalidate_caches"):
            other.invalidate_caches()


def _namespace_path(external: object) -> Any:
    """The class of namespace packages' __path__, whose `_epoch` the path-based
    finder's invalidate_caches() moves on; None for any other layout."""
    for name in ("NamespacePath", "_NamespacePath"):  # 3.15, 3.13 and 3.14
        found = getattr(external, name, None)
        if isinstance(getattr(found, "_epoch", None), int):
            return found
    return None


def _invalidate_path_entries(is_absolute: Callable[[str], bool]) -> None:
    cache = sys.path_importer_cache
    for path, found in list(cache.items()):
        if found is None or not is_absolute(path):  # a relative entry: the working directory may move
            cache.pop(path, None)
        elif hasattr(found, "invalidate_caches"):
            found.invalidate_caches()
