"""lazy-import-hook: install allow-listed packages on their first import.

    import lazy_import_hook
    lazy_import_hook.install({"isodate": "isodate==0.7.2"})
    import isodate  # installed into the durable target on first use

See README.md for configuration, errors and the security model.
"""

from __future__ import annotations

from ._hook import child_env, install, uninstall, verify
from ._plan import VERSION as __version__

TYPE_CHECKING = False
if TYPE_CHECKING:
    from distributed import WorkerPlugin

    from ._errors import ConfigError, LazyInstallError
    from ._optional import optional
    from ._prefetch import prefetch
    from ._verify import Verification

__all__ = [
    "ConfigError", "LazyInstallError", "Verification", "__version__",
    "child_env", "dask_plugin", "install", "optional", "prefetch", "uninstall", "verify",
]  # fmt: skip

# Imported when first asked for: the warm start loads none of these modules,
# nor what they need (`typing`, `concurrent.futures`, `threading`). Even the
# exceptions wait: a start that raises nothing skips their eleven classes.
_DEFERRED = {
    "ConfigError": "_errors", "LazyInstallError": "_errors",
    "Verification": "_verify", "optional": "_optional", "prefetch": "_prefetch",
}  # fmt: skip


def __getattr__(name: str) -> object:
    module = _DEFERRED.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    value: object = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def dask_plugin(target: str | None = None) -> WorkerPlugin:
    """A Dask `distributed.WorkerPlugin` that installs this process's hook on
    every worker of a cluster, now and as they join:

        client.register_plugin(lazy_import_hook.dask_plugin())

    It carries this process's validated plan; each worker checks, creates
    and stamps the target on its own host (`target=`: another folder there;
    default the same path) and honours its own LAZY_IMPORT_HOOK_DISABLE.
    Unregistering it uninstalls the hook. Raises RuntimeError before install().
    """
    from ._dask import dask_plugin as plugin  # imports distributed (~1 s): only when asked for

    return plugin(target)
