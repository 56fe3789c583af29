"""lazy-import-hook: install allow-listed packages on their first import.

    import lazy_import_hook
    lazy_import_hook.install({"isodate": "isodate==0.7.2"})
    import isodate  # installed into the durable target on first use

See README.md for configuration, errors and the security model.
"""

from __future__ import annotations

from ._errors import ConfigError, LazyInstallError
from ._hook import child_env, install, uninstall
from ._version import VERSION as __version__

__all__ = ["ConfigError", "LazyInstallError", "__version__", "child_env", "install", "uninstall"]
