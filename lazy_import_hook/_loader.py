"""The loader of a module the hook installs.

CPython calls meta-path finders under its global import lock, so the finder
only decides and returns a spec with this loader. The install runs in
`create_module`, under the importing module's own lock: other threads keep
importing other modules meanwhile, and a second import of the same module
waits for this one. Then the loader hands over to the real spec and loader
(found by the finders ahead of the hook, so whatever instruments imports
sees this module too), keeping the module object `import` created.
"""

from __future__ import annotations

import _thread
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from importlib.machinery import ModuleSpec
    from types import ModuleType


class InstallingLoader:
    """`install` installs (or raises the LazyInstallError that says why not)
    and returns the real spec."""

    def __init__(self, install: Callable[[], ModuleSpec]) -> None:
        self._install = install
        self._real: ModuleSpec | None = None
        self._deferred: list[Callable[[], None]] | None = None  # what the install left for later

    def __repr__(self) -> str:
        return "<lazy-import-hook installing loader>"

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        real = self.real_spec()
        try:
            create = getattr(real.loader, "create_module", None)
            module: ModuleType | None = create(real) if create is not None else None
        except BaseException:
            self._start_deferred()  # no exec_module follows
            raise
        return module

    def exec_module(self, module: ModuleType) -> None:
        try:
            self._exec(module)
        finally:
            self._start_deferred()

    def _exec(self, module: ModuleType) -> None:
        real = self.real_spec()  # installs here if create_module was skipped (LazyLoader)
        adopt(module, real)
        loader = real.loader
        if loader is None:
            return  # a namespace package: nothing to run
        if not hasattr(loader, "exec_module"):
            loader.load_module(real.name)  # a legacy loader puts its module in sys.modules
            return
        real._initializing = True  # type: ignore[attr-defined]  # other threads wait, as for any import
        try:
            loader.exec_module(module)
        finally:
            real._initializing = False  # type: ignore[attr-defined]

    def real_spec(self) -> ModuleSpec:
        if self._real is None:
            if getattr(_thread_state, "deferred", None) is not None:
                self._real = self._install()  # nested: the outer install's loader starts what it leaves
            else:
                self._real = self._install_owning_deferred()
        return self._real

    def install_now(self) -> ModuleSpec:
        """The real spec, for a caller that will not run this loader's
        exec_module (`lazy-import-hook run -m`): what the install left for
        later starts now."""
        try:
            return self.real_spec()
        finally:
            self._start_deferred()

    def _install_owning_deferred(self) -> ModuleSpec:
        self._deferred = _thread_state.deferred = []
        try:
            spec = self._install()
        except BaseException:
            del _thread_state.deferred  # first: what starts now is not under this install
            self._start_deferred()
            raise
        del _thread_state.deferred
        return spec

    def _start_deferred(self) -> None:
        work, self._deferred = self._deferred or [], None
        for start in work:
            try:
                start()
            except Exception:  # never turn a finished import into a failure (see after_this_import)
                pass


_thread_state = _thread._local()


def after_this_import(start: Callable[[], None]) -> None:
    """Call `start` once the module this thread is installing has run (its
    own imports included), so that background work such as uv's provenance
    does not compete with it; at once when no install is under way here.
    `start` must report its own failures: one raised later is dropped, as
    the import it follows has succeeded."""
    deferred: list[Callable[[], None]] | None = getattr(_thread_state, "deferred", None)
    if deferred is None:
        start()
    else:
        deferred.append(start)


def adopt(module: ModuleType, spec: ModuleSpec) -> None:
    """Give `module` the import attributes the real spec gives it."""
    module.__spec__ = spec
    module.__loader__ = spec.loader
    module.__package__ = spec.parent
    if spec.submodule_search_locations is not None:
        module.__path__ = spec.submodule_search_locations
    if spec.has_location and spec.origin is not None:
        module.__file__ = spec.origin
        if spec.cached is not None:
            module.__cached__ = spec.cached  # type: ignore[attr-defined]


class FailingLoader:
    """For a module whose import must fail at once with this error."""

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        raise self.error.with_traceback(None)

    def exec_module(self, module: ModuleType) -> None:
        raise self.error.with_traceback(None)


def called_by_import(above: int) -> bool:
    """Whether the meta-path `find_spec` call `above` frames above the caller
    was made by an import (`importlib._bootstrap._find_and_load_unlocked`),
    not by a probe such as `importlib.util.find_spec` or `pkgutil`."""
    frame = sys._getframe(above + 1)  # the find_spec frame
    for _ in range(3):  # _find_spec, then its caller (a wrapper may sit between)
        frame = frame.f_back  # type: ignore[assignment]
        if frame is None:
            return False
        code = frame.f_code
        if code.co_name == "_find_and_load_unlocked" and "importlib._bootstrap" in code.co_filename:
            return True
    return False
