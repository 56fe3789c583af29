"""`optional(name)`: the module, or None when it cannot be had.

For code that wrote `try: import x / except ImportError: x = None`: on
Python 3.15 a `lazy import` may not stand in a `try` block, and
`optional()` asks at the point of use instead, where the install (if any)
then happens. Only "there is no such module here" becomes None; a module
that exists but fails to import is an error, as it should be.
"""

from __future__ import annotations

import importlib
import sys

from ._errors import LazyInstallError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import ModuleType


def optional(name: str) -> ModuleType | None:
    """The module `name` (imported, installed through the hook if it is
    allow-listed), or None when it cannot be had: it exists nowhere and is
    not allow-listed (or its markers are false here), its install failed,
    installs are disabled, the target is refused. Anything else propagates:
    an error in the module's own code, an ImportError about another module
    it imports (a broken install is not a missing feature), Ctrl-C.

        uvloop = lazy_import_hook.optional("uvloop")
        if uvloop is not None:
            uvloop.install()

    Works with or without install(). A name the hook failed to install is
    not tried again until `retry-after` (or `importlib.invalidate_caches()`).
    """
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as e:
        if _missing(e, name):
            return None
        raise


def _missing(error: ModuleNotFoundError, name: str) -> bool:
    """Whether `error` says that `name` itself is not to be had: no module
    of that name, nor of a package above it, or the hook could not install
    it (or the entry below it that the import of its parent installs)."""
    missing = error.name
    if not missing:
        return False
    if missing == name or name.startswith(missing + "."):
        return True
    below = isinstance(error, LazyInstallError) and missing.startswith(name + ".")
    return below and not _exists_without_the_hook(name)


def _exists_without_the_hook(name: str) -> bool:
    """Whether the finders ahead of the hook find `name`: then the failed
    install below it was asked for by its own code (a broken package), not
    by an import of a parent that exists nowhere."""
    from ._finder import LazyFinder
    from ._serve import found_ahead

    finder = next((f for f in sys.meta_path if isinstance(f, LazyFinder)), None)
    return finder is not None and found_ahead(finder, name)
