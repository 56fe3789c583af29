"""A Dask worker plugin that installs the hook on every worker of a cluster.

Imported only by `lazy_import_hook.dask_plugin()` on the client and by the
workers that unpickle the plugin: importing `distributed` takes a second.

The plugin carries the client's validated plan (the text `child_env()`
hands to a child), not the allowlist: a worker validates nothing again and
reads no pyproject, so it installs exactly what the client allowed. Its
`setup` runs in each worker process, the ones there now and the ones that
join later: the target (the client's path, or the one given) is checked,
created and stamped on the worker's own host, the kill switch of the
worker's environment holds, and the hook is installed as `install()` would.
Workers that share a host share that target, and its lock makes their
installs one. `teardown` (unregistering the plugin) uninstalls it.
"""

from __future__ import annotations

from distributed import WorkerPlugin

from ._finder import active_finder
from ._hook import install_on_worker, uninstall
from ._plan import child_text

TYPE_CHECKING = False
if TYPE_CHECKING:
    from distributed import Worker


class HookPlugin(WorkerPlugin):
    """Installs lazy-import-hook on each Dask worker from the client's plan."""

    name = "lazy-import-hook"  # registering it again replaces it

    def __init__(self, plan: str, target: str | None = None) -> None:
        self.plan = plan
        self.target = target

    def setup(self, worker: Worker) -> None:
        install_on_worker(self.plan, target=self.target)

    def teardown(self, worker: Worker) -> None:
        uninstall()


def dask_plugin(target: str | None = None) -> HookPlugin:
    finder = active_finder()
    if finder is None:
        raise RuntimeError("lazy_import_hook.dask_plugin() needs install() to have run first")
    return HookPlugin(child_text(finder.plan), target)
