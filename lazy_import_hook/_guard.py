"""Which allow-listed modules the target may serve right now.

The path-based finder finds what the target holds without asking the hook,
so every folder of the target gets a finder that asks this guard first. A
module whose installed version no longer matches its pin is not served (a
pin change, an interrupted upgrade, another process that upgraded a shared
target since this one started): the import reaches the hook, which
installs the pinned version or says why it cannot. Submodules follow their
allow-listed package, so a package is never served half old, half new.
"""

from __future__ import annotations

import os

from ._target import ALL_LOADERS, SOURCE_ONLY, FolderFinder

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping
    from importlib.machinery import ModuleSpec
    from types import ModuleType

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
