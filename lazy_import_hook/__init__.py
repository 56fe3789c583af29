"""lazy-import-hook: install allow-listed packages on their first import.

    import lazy_import_hook
    lazy_import_hook.install({"isodate": "isodate==0.7.2"})
    import isodate  # installed into the durable target on first use

See README.md for configuration, errors and the security model.
"""

from __future__ import annotations

from ._errors import ConfigError, LazyInstallError
from ._hook import child_env, install, uninstall, verify
from ._version import VERSION as __version__

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ._verify import Verification

__all__ = [
    "ConfigError", "LazyInstallError", "Verification", "__version__",
    "child_env", "install", "uninstall", "verify",
]  # fmt: skip


def __getattr__(name: str) -> object:
    # verify()'s result type, imported when asked for: the warm start does
    # not load that module (nor `typing`, which its NamedTuples need).
    if name == "Verification":
        from ._verify import Verification

        return Verification
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
