"""The hook's place in the import system: the meta-path finder, which decides
and never installs; the path-entry finders of the target's folders, which
hide stale versions; and a watch that runs code once a module is imported.

The finder sits LAST on sys.meta_path, so it only ever sees names that every
core finder missed. A name that is not allow-listed costs one frozenset
lookup. CPython holds its global import lock while it asks a finder, so
`find_spec` only decides (see `_serve`, loaded for the first name it takes):
it returns a spec whose loader installs (under the importing module's own
lock, see `_loader`), or, when an import would fail
at once (installs disabled, a refused target, a recent failure), a spec
that raises the informative error to an import and None to a probe
(`importlib.util.find_spec`, `pkgutil`), which must never install or raise.

The path-based finder finds what the target holds without asking the hook,
so every folder of the target gets a finder that asks a guard first. A
module whose installed version no longer matches its pin is not served (a
pin change, an interrupted upgrade, another process that upgraded a shared
target since this one started): the import reaches the hook, which
installs the pinned version or says why it cannot. Submodules follow their
allow-listed package, so a package is never served half old, half new.

The watch (see `after_import`) puts nothing on sys.meta_path, so no import
pays for it: a path hook claims the package's folder when the package is
first imported, and the path-based finder then uses, for that one folder, a
finder that wraps the loader of the watched submodule.
"""

from __future__ import annotations

import _thread
import os
import sys
from time import time as _now  # bound at import: sys.modules["time"] may be replaced later

from ._target import ALL_LOADERS, SOURCE_ONLY, FolderFinder

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence
    from importlib.machinery import ModuleSpec
    from types import ModuleType

    from _typeshed.importlib import PathEntryFinderProtocol

    from ._errors import LazyInstallError
    from ._plan import Layer, Plan


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
        # The names of the entries that may install; their Entry objects are
        # looked up only when one is imported (a cached plan parses them then).
        self._active = frozenset(plan.active_names())
        # Parents of dotted names -> the names below them.
        self._prefixes: dict[str, list[str]] = {}
        for n in self._active:
            for i in range(1, n.count(".") + 1):
                self._prefixes.setdefault(".".join(n.split(".")[:i]), []).append(n)
        # Every name the finder answers for: a miss costs this one lookup.
        self._names = self._active | frozenset(self._prefixes)
        self._failed: dict[str, LazyInstallError] = {}
        self._local = _thread._local()
        # Failures recorded on disk before this moment are not a reason to wait
        # (see retry-after): importlib.invalidate_caches() means "retry now".
        self.retry_failures_after = 0.0
        self.guard = Guard(self.target, self._active, self._served_infos, plan.verified)
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
        return f"<LazyFinder target={self.target!r} entries={len(self._active)}>"

    def _layer_guard(self, layer: Layer) -> Guard:
        guard = Guard(layer.folder, self._active, lambda name: self._served_infos(name, layer.folder),
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
        from ._serve import decide  # only when a name is ours

        return decide(self, fullname, path)

    def invalidate_caches(self) -> None:
        """`importlib.invalidate_caches()` clears the negative cache. Never raises."""
        if not getattr(self._local, "invalidating", False):
            self._failed.clear()
            self.retry_failures_after = _now()

    def _served_infos(self, name: str, folder: str = "") -> tuple[str, ...] | None:
        """For a guard: the dist-info folders of `name` if `folder` (the
        target by default) holds versions its pins allow (imports packaging:
        called rarely)."""
        from ._holdings import matching_infos

        entry = self.plan.entries.get(name) if name in self._active else None
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


# -- the path-entry finders of the target's folders, and the watch ----------------


class Guard:
    """`check(name)`: the dist-info folders of `name`'s distributions if the
    target holds versions its pins allow, else None (called rarely: the
    folders checked before are remembered and only stat-ed again)."""

    def __init__(
        self,
        target: str,
        names: Iterable[str],
        check: Callable[[str], tuple[str, ...] | None],
        verified: Mapping[str, tuple[str, ...]],
    ) -> None:
        self.target = target
        self.names = frozenset(names)  # allow-listed import names
        self.check = check
        self.verified = dict(verified)  # import name -> dist-info folders that matched
        self.hidden: set[str] = set()  # never served until installed again
        self.source_only = False

    def allows(self, fullname: str) -> bool:
        name = self._governing(fullname)
        if name is None:
            return True
        if name in self.hidden:
            return False
        infos = self.verified.get(name)
        if infos and all(os.path.isdir(os.path.join(self.target, info)) for info in infos):
            return True
        found = self.check(name)
        if found is None:
            self.hidden.add(name)
            return False
        self.verified[name] = found
        return True

    def _governing(self, fullname: str) -> str | None:
        """The allow-listed name that `fullname` is, or is inside of."""
        name = fullname
        while name not in self.names:
            name, dot, _ = name.rpartition(".")
            if not dot:
                return None
        return name

    def unhide(self, name: str, infos: tuple[str, ...] | None = None) -> None:
        self.hidden.discard(name)
        self.verified.pop(name, None)
        if infos:
            self.verified[name] = infos

    def covers(self, path: str) -> bool:
        return path == self.target or path.startswith(self.target + os.sep)

    def path_hook(self, path: str) -> FolderFinder:
        """For sys.path_hooks: a guarded finder for the target's folders."""
        if not self.covers(path):
            raise ImportError("not a folder of the lazy-import-hook target", path=path)
        return GuardedFinder(path, self, *(SOURCE_ONLY if self.source_only else ALL_LOADERS))


class GuardedFinder(FolderFinder):
    """A FileFinder for one folder of the target that asks the guard first."""

    def __init__(self, path: str, guard: Guard, *details: tuple[type, list[str]]) -> None:
        super().__init__(path, *details)
        self.guard = guard

    def find_spec(self, fullname: str, target: ModuleType | None = None) -> ModuleSpec | None:
        spec = super().find_spec(fullname, target)
        if spec is None or self.guard.allows(fullname):
            return spec
        return None


def after_import(name: str, then: Callable[[ModuleType], None]) -> None:
    """Call `then(module)` once the submodule `name` has been executed: now if
    it has been, else when it is; until `forget(name)`. `then` may be called
    more than once for one module (a thread may import it while this runs):
    it must not mind."""
    if not any(isinstance(hook, _Watch) and hook.name == name for hook in sys.path_hooks):
        sys.path_hooks.insert(0, _Watch(name, then))  # first, so an import meanwhile is seen
    _forget_folder_finders(name.rpartition(".")[0])
    module = sys.modules.get(name)
    if module is not None:
        then(module)


def _forget_folder_finders(package: str) -> None:
    """The finders cached for `package`'s folders (if it is loaded), or for
    folders that may be its (pkgutil makes them without importing it): the
    next lookup there asks the hooks again, the watch first."""
    loaded = sys.modules.get(package)
    folders = set(getattr(loaded, "__path__", ())) if loaded is not None else None
    last = package.rpartition(".")[2]

    def maybe_its(path: str, finder: object) -> bool:
        if folders is not None:
            return path in folders
        return type(finder) is FolderFinder and os.path.basename(path) == last

    cache = sys.path_importer_cache
    for path in [p for p, f in list(cache.items()) if maybe_its(p, f)]:
        cache.pop(path, None)


def forget(name: str) -> None:
    """Stop watching for `name`. A finder the watch made keeps its wrapper,
    and `then` has run for a module already imported."""
    sys.path_hooks[:] = [h for h in sys.path_hooks if not (isinstance(h, _Watch) and h.name == name)]


class _Watch:
    """A path hook for the folder (or zip archive) of the watched submodule's
    package, asked only for folders the path-based finder has not seen
    before: it takes the finder the hooks after it would give, watching."""

    def __init__(self, name: str, then: Callable[[ModuleType], None]) -> None:
        self.name = name
        self.package = name.rpartition(".")[0]
        self.then = then

    def __call__(self, path: str) -> PathEntryFinderProtocol:
        package = sys.modules.get(self.package)
        if package is None or path not in getattr(package, "__path__", ()):
            raise ImportError("not the watched package's folder", path=path)
        inner = self._next_finder(path)
        if type(inner) is FolderFinder:  # CPython's own: the same, watching (pkgutil still knows it)
            return _WatchingFinder(path, self, *ALL_LOADERS)
        if not hasattr(inner, "find_spec"):  # a legacy finder (zipimport before 3.10): not watched
            return inner
        return _Watching(inner, self)

    def _next_finder(self, path: str) -> PathEntryFinderProtocol:
        hooks = sys.path_hooks
        for hook in hooks[hooks.index(self) + 1 :] if self in hooks else ():
            try:
                return hook(path)
            except ImportError:
                continue
        raise ImportError("no path hook takes this folder", path=path)

    def wrap(self, fullname: str, spec: ModuleSpec | None) -> ModuleSpec | None:
        if fullname == self.name and spec is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _ThenCall(spec.loader, self.then)  # type: ignore[assignment]
        return spec


class _WatchingFinder(FolderFinder):
    """The path-based finder of the watched package's folder."""

    def __init__(self, path: str, watch: _Watch, *details: tuple[type, list[str]]) -> None:
        super().__init__(path, *details)
        self.watch = watch

    def find_spec(self, fullname: str, target: ModuleType | None = None) -> ModuleSpec | None:
        return self.watch.wrap(fullname, super().find_spec(fullname, target))


class _Watching:
    """Another path hook's finder (a zip archive's, an application's own),
    watching; everything else is the finder's own."""

    def __init__(self, inner: PathEntryFinderProtocol, watch: _Watch) -> None:
        self.inner = inner
        self.watch = watch

    def find_spec(self, fullname: str, target: ModuleType | None = None) -> ModuleSpec | None:
        return self.watch.wrap(fullname, self.inner.find_spec(fullname, target))

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


class _ThenCall:
    """A module's own loader, then the watch's call."""

    def __init__(self, loader: object, then: Callable[[ModuleType], None]) -> None:
        self.loader = loader
        self.then = then

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        create = getattr(self.loader, "create_module", None)
        return create(spec) if create is not None else None

    def exec_module(self, module: ModuleType) -> None:
        # The real loader again, for whoever looks (inspect, linecache).
        module.__loader__ = self.loader  # type: ignore[assignment]
        if module.__spec__ is not None:
            module.__spec__.loader = self.loader  # type: ignore[assignment]
        self.loader.exec_module(module)  # type: ignore[attr-defined]
        self.then(module)
